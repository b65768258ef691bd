package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

func auditEntries(n int, start time.Time) []plugin.AuditEntry {
	out := make([]plugin.AuditEntry, n)
	for i := range out {
		out[i] = plugin.AuditEntry{
			At: start.Add(time.Duration(i) * time.Minute), Actor: []string{"alice", "bob"}[i%2],
			Action: []string{"configuration.create", "action.add", "token.create"}[i%3],
			Target: fmt.Sprintf("user%d@acme.com", i%4), Outcome: "done",
			Detail: map[string]string{"i": fmt.Sprint(i), "group": "Risky"},
		}
	}
	return out
}

func TestAppendAudit(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	if err := s.AppendAudit(ctx); err != nil {
		t.Fatalf("AppendAudit of nothing: %v", err)
	}
	in := auditEntries(10, clk.Now().In(time.FixedZone("X", 3600)))
	if err := s.AppendAudit(ctx, in[:4]...); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, in[4:]...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(ctx, plugin.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("got %d entries, want 10", len(got))
	}
	prev := ""
	for i, e := range got {
		if e.Seq != uint64(i+1) || e.PrevHash != prev || e.Hash != AuditHash(s.auditKey, e) || len(e.Hash) != 64 {
			t.Errorf("entry %d: seq %d prev %.8s hash %.8s; want seq %d prev %.8s", i, e.Seq, e.PrevHash, e.Hash, i+1, prev)
		}
		if !e.At.Equal(in[i].At) || e.At.Location() != time.UTC || e.Detail["i"] != fmt.Sprint(i) {
			t.Errorf("entry %d content changed: %+v", i, e)
		}
		prev = e.Hash
	}
	if r, err := s.VerifyAudit(ctx); err != nil || !r.OK || r.Entries != 10 || r.LastSeq != 10 {
		t.Errorf("VerifyAudit = %+v, %v; want OK with 10 entries", r, err)
	}
}

func TestAuditHashCoversEveryField(t *testing.T) {
	base := plugin.AuditEntry{Seq: 3, At: time.Unix(100, 5), Actor: "a", Action: "b", Target: "c", Outcome: "d", Detail: map[string]string{"k": "v"}, PrevHash: "p"}
	key := testKey(9)
	h := AuditHash(key, base)
	if AuditHash(key, base) != h {
		t.Fatalf("hash is not deterministic")
	}
	if AuditHash(testKey(8), base) == h {
		t.Errorf("the hash does not depend on the key")
	}
	withHash := base
	withHash.Hash = "anything"
	if AuditHash(key, withHash) != h {
		t.Errorf("Hash field is part of the hash")
	}
	edits := map[string]func(e *plugin.AuditEntry){
		"seq":       func(e *plugin.AuditEntry) { e.Seq++ },
		"at":        func(e *plugin.AuditEntry) { e.At = e.At.Add(time.Nanosecond) },
		"actor":     func(e *plugin.AuditEntry) { e.Actor = "x" },
		"action":    func(e *plugin.AuditEntry) { e.Action = "x" },
		"target":    func(e *plugin.AuditEntry) { e.Target = "x" },
		"outcome":   func(e *plugin.AuditEntry) { e.Outcome = "x" },
		"detail":    func(e *plugin.AuditEntry) { e.Detail = map[string]string{"k": "w"} },
		"no detail": func(e *plugin.AuditEntry) { e.Detail = nil },
		"prev":      func(e *plugin.AuditEntry) { e.PrevHash = "q" },
	}
	for name, edit := range edits {
		e := base
		edit(&e)
		if AuditHash(key, e) == h {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
	empty := base
	empty.Detail = map[string]string{}
	nilDetail := base
	nilDetail.Detail = nil
	if AuditHash(key, empty) != AuditHash(key, nilDetail) {
		t.Errorf("empty and nil Detail hash differently (JSON drops both)")
	}
}

func TestAuditFilter(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	start := clk.Now()
	if err := s.AppendAudit(ctx, auditEntries(12, start)...); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    plugin.AuditFilter
		want []uint64
	}{
		{"all", plugin.AuditFilter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"limit", plugin.AuditFilter{Limit: 3}, []uint64{1, 2, 3}},
		{"after", plugin.AuditFilter{After: 9}, []uint64{10, 11, 12}},
		{"after and limit", plugin.AuditFilter{After: 3, Limit: 2}, []uint64{4, 5}},
		{"since inclusive", plugin.AuditFilter{Since: start.Add(9 * time.Minute)}, []uint64{10, 11, 12}},
		{"until inclusive", plugin.AuditFilter{Until: start.Add(2 * time.Minute)}, []uint64{1, 2, 3}},
		{"actor", plugin.AuditFilter{Actor: "bob", Limit: 3}, []uint64{2, 4, 6}},
		{"action", plugin.AuditFilter{Action: "token.create"}, []uint64{3, 6, 9, 12}},
		{"target", plugin.AuditFilter{Target: "user1@acme.com"}, []uint64{2, 6, 10}},
		{"combined", plugin.AuditFilter{Actor: "alice", Action: "action.add", Since: start.Add(time.Minute)}, []uint64{5, 11}},
		{"none", plugin.AuditFilter{Actor: "mallory"}, nil},
		{"after the end", plugin.AuditFilter{After: 12}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Audit(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.want) {
				t.Errorf("seqs = %v, want %v", seqs, tt.want)
			}
		})
	}
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	ctx := context.Background()
	edit := func(seq uint64, fn func(e map[string]any)) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			b := tx.Bucket(bktAudit)
			var e map[string]any
			if err := json.Unmarshal(b.Get(u64(seq)), &e); err != nil {
				return err
			}
			fn(e)
			buf, _ := json.Marshal(e)
			return b.Put(u64(seq), buf)
		}
	}
	del := func(seqs ...uint64) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			for _, seq := range seqs {
				if err := tx.Bucket(bktAudit).Delete(u64(seq)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	tests := []struct {
		name        string
		tamper      func(tx *bbolt.Tx) error
		wantSeq     uint64
		wantProblem string
	}{
		{"edit outcome", edit(4, func(e map[string]any) { e["outcome"] = "failed" }), 4, AuditChanged},
		{"edit detail", edit(1, func(e map[string]any) { e["detail"].(map[string]any)["group"] = "Safe" }), 1, AuditChanged},
		// Whoever can write the file but lacks the master key edits an entry
		// and recomputes every later hash and the head, with the old
		// unkeyed SHA-256 scheme or with a key of their own.
		{"edit and rehash unkeyed", forgeFrom(3, unkeyedHash), 3, AuditChanged},
		{"edit and rehash with another key", forgeFrom(3, func(e plugin.AuditEntry) string { return AuditHash(testKey(7), e) }), 3, AuditChanged},
		{"edit own entry hash only", edit(3, func(e map[string]any) {
			e["actor"] = "mallory"
			var x plugin.AuditEntry
			buf, _ := json.Marshal(e)
			_ = json.Unmarshal(buf, &x)
			e["hash"] = AuditHash(testKey(7), x)
		}), 3, AuditChanged},
		{"garbage bytes", func(tx *bbolt.Tx) error { return tx.Bucket(bktAudit).Put(u64(2), []byte("{not json")) }, 2, AuditChanged},
		{"delete middle", del(3), 3, AuditRemoved},
		{"delete first", del(1), 1, AuditRemoved},
		{"delete newest", del(6), 6, AuditRemoved},
		{"delete newest two and head", func(tx *bbolt.Tx) error {
			if err := del(5, 6)(tx); err != nil {
				return err
			}
			return tx.Bucket(bktMeta).Delete(keyAuditHead)
		}, 5, AuditRemoved},
		{"swap two", func(tx *bbolt.Tx) error {
			b := tx.Bucket(bktAudit)
			a, c := append([]byte(nil), b.Get(u64(2))...), append([]byte(nil), b.Get(u64(3))...)
			if err := b.Put(u64(2), c); err != nil {
				return err
			}
			return b.Put(u64(3), a)
		}, 2, AuditReordered},
		{"bad key", func(tx *bbolt.Tx) error { return tx.Bucket(bktAudit).Put([]byte("x"), []byte("{}")) }, 7, AuditChanged},
		{"truncate newest and rewrite head", func(tx *bbolt.Tx) error {
			if err := del(5, 6)(tx); err != nil {
				return err
			}
			b := tx.Bucket(bktAudit)
			if err := b.SetSequence(4); err != nil {
				return err
			}
			var e plugin.AuditEntry
			if err := json.Unmarshal(b.Get(u64(4)), &e); err != nil {
				return err
			}
			return putJSON(tx.Bucket(bktMeta), keyAuditHead, auditHead{Seq: 4, Hash: e.Hash, MAC: headMAC(testKey(7), 4, e.Hash)})
		}, 5, AuditRemoved},
		{"delete head only", func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Delete(keyAuditHead) }, 6, AuditRemoved},
		{"audit key replaced", func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Put(keyAuditKey, []byte("sealed:v1:AAAA")) }, 1, AuditChanged},
		{"audit key removed", func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Delete(keyAuditKey) }, 1, AuditChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ure.db")
			s := mustOpen(t, path, testKey(1), nil)
			if err := s.AppendAudit(ctx, auditEntries(6, time.Unix(1e9, 0))...); err != nil {
				t.Fatal(err)
			}
			s.Close()
			rawUpdate(t, path, tt.tamper)
			// A read-write Open must not replace a removed audit key.
			mustOpen(t, path, testKey(1), nil).Close()
			s, err := Open(path, Options{ReadOnly: true, MasterKey: testKey(1)})
			if err != nil {
				t.Fatalf("Open read-only: %v", err)
			}
			defer s.Close()
			r, err := s.VerifyAudit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.Seq != tt.wantSeq || r.Problem != tt.wantProblem || r.Message == "" {
				t.Errorf("VerifyAudit = %+v; want seq %d %s", r, tt.wantSeq, tt.wantProblem)
			}
		})
	}
}

// unkeyedHash is the chain's hash before it was keyed (SHA-256 of the
// canonical encoding), what a forger without the master key can compute.
func unkeyedHash(e plugin.AuditEntry) string {
	buf, _ := json.Marshal(canonicalAudit{
		Seq: e.Seq, At: e.At.UTC().Format(time.RFC3339Nano), Actor: e.Actor, Action: e.Action,
		Target: e.Target, Outcome: e.Outcome, Detail: e.Detail, PrevHash: e.PrevHash,
	})
	sum := sha256.Sum256(append([]byte("mimecast-ure audit v1\n"), buf...))
	return hex.EncodeToString(sum[:])
}

// forgeFrom edits entry seq's actor and recomputes that entry's hash, every
// later entry's link and hash, and the head, with hash.
func forgeFrom(seq uint64, hash func(plugin.AuditEntry) string) func(tx *bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktAudit)
		prev := ""
		if seq > 1 {
			var p plugin.AuditEntry
			if err := json.Unmarshal(b.Get(u64(seq-1)), &p); err != nil {
				return err
			}
			prev = p.Hash
		}
		var head auditHead
		for k, v := b.Cursor().Seek(u64(seq)); k != nil; k, v = b.Cursor().Seek(u64(head.Seq + 1)) {
			var e plugin.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if e.Seq == seq {
				e.Actor = "mallory"
			}
			e.PrevHash = prev
			e.Hash = hash(e)
			if err := putJSON(b, k, e); err != nil {
				return err
			}
			prev = e.Hash
			head = auditHead{Seq: e.Seq, Hash: e.Hash, MAC: hash(plugin.AuditEntry{Seq: e.Seq, PrevHash: e.Hash})}
		}
		return putJSON(tx.Bucket(bktMeta), keyAuditHead, head)
	}
}

func TestVerifyAuditNeedsMasterKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := FilePath(dir)
	s := mustOpen(t, path, testKey(1), nil)
	if err := s.AppendAudit(ctx, auditEntries(3, time.Unix(1e9, 0))...); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for _, ro := range []bool{true, false} {
		s, err := Open(path, Options{ReadOnly: ro})
		if err != nil {
			t.Fatalf("Open without a key (read-only %v): %v", ro, err)
		}
		_, err = s.VerifyAudit(ctx)
		want := "audit verify needs the master key: set URE_MASTER_KEY or --master-key-file, or keep " + filepath.Join(dir, MasterKeyFile)
		if err == nil || err.Error() != want || !errors.Is(err, ErrNoMasterKey) || !errors.Is(err, ErrNoKey) {
			t.Errorf("VerifyAudit without a key (read-only %v): err = %v, want %q", ro, err, want)
		}
		// Reading the log needs no key.
		if got, err := s.Audit(ctx, plugin.AuditFilter{}); err != nil || len(got) != 3 {
			t.Errorf("Audit without a key: %d entries, %v", len(got), err)
		}
		s.Close()
	}
	s, err := Open(path, Options{ReadOnly: true, MasterKey: testKey(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.VerifyAudit(ctx); err != nil || !r.OK || r.Entries != 3 {
		t.Errorf("VerifyAudit with the key = %+v, %v; want OK", r, err)
	}
}

func TestAuditSurvivesKeyRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ure.db")
	s := mustOpen(t, path, testKey(1), nil)
	if err := s.AppendAudit(ctx, auditEntries(4, time.Unix(1e9, 0))...); err != nil {
		t.Fatal(err)
	}
	before := append([]byte(nil), s.auditKey...)
	s.Close()
	if _, err := RotateMasterKey(path, testKey(1), testKey(2)); err != nil {
		t.Fatalf("RotateMasterKey: %v", err)
	}
	s = mustOpen(t, path, testKey(2), nil)
	if !bytes.Equal(s.auditKey, before) {
		t.Errorf("the audit key changed with the master key")
	}
	if err := s.AppendAudit(ctx, auditEntries(2, time.Unix(2e9, 0))...); err != nil {
		t.Fatal(err)
	}
	if r, err := s.VerifyAudit(ctx); err != nil || !r.OK || r.Entries != 6 {
		t.Errorf("VerifyAudit after rotation = %+v, %v; want OK with 6 entries", r, err)
	}
	// The sealed audit key opens under its own AAD only.
	var sealed string
	if err := s.db.View(func(tx *bbolt.Tx) error {
		sealed = string(tx.Bucket(bktMeta).Get(keyAuditKey))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := unseal(s.aead, sealed, checkAAD); err == nil {
		t.Errorf("the sealed audit key opens as the key check value")
	}
	if strings.Contains(sealed, base64.StdEncoding.EncodeToString(before)) {
		t.Errorf("the audit key is stored in clear")
	}
}

func TestAppendAuditWithoutKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mustOpen(t, FilePath(dir), testKey(1), nil).Close()
	s := mustOpen(t, FilePath(dir), nil, nil)
	err := s.AppendAudit(ctx, plugin.AuditEntry{Actor: "cli", Action: "x"})
	if !errors.Is(err, ErrNoMasterKey) || !strings.Contains(err.Error(), "writing the audit log needs the master key") {
		t.Errorf("AppendAudit without a key: err = %v, want one naming the master key", err)
	}
	if msg := plugin.ErrorMessage(err); !strings.Contains(msg, "needs the master key: set URE_MASTER_KEY") {
		t.Errorf("plugin.ErrorMessage = %q, want the advice", msg)
	}
	// Token changes are audited, so they need the key too; reads do not.
	if err := s.CreateToken(ctx, plugin.Token{ID: "t1", Hash: "h1"}); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("CreateToken without a key: err = %v, want ErrNoMasterKey", err)
	}
	if err := s.RevokeToken(ctx, "t1", time.Now()); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("RevokeToken without a key: err = %v, want ErrNoMasterKey", err)
	}
	if _, err := s.Tokens(ctx); err != nil {
		t.Errorf("Tokens without a key: %v", err)
	}
}

func TestAuditAfterMaxCursor(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	if err := s.AppendAudit(ctx, auditEntries(3, clk.Now())...); err != nil {
		t.Fatal(err)
	}
	for _, after := range []uint64{math.MaxUint64, math.MaxUint64 - 1, 3} {
		got, err := s.Audit(ctx, plugin.AuditFilter{After: after})
		if err != nil || len(got) != 0 {
			t.Errorf("Audit(After %d) = %d entries, %v; want none", after, len(got), err)
		}
	}
}

func TestAuditSinceOutOfRange(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	if err := s.AppendAudit(ctx, auditEntries(3, clk.Now())...); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		since time.Time
		want  int
	}{
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), 3},
		{time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), 3},
	} {
		got, err := s.Audit(ctx, plugin.AuditFilter{Since: tt.since})
		if err != nil || len(got) != tt.want {
			t.Errorf("Audit(Since %v) = %d entries, %v; want %d", tt.since, len(got), err, tt.want)
		}
	}
}

func BenchmarkAppendAudit10k(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	entries := auditEntries(10_000, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AppendAudit(ctx, entries...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(entries))/b.Elapsed().Seconds(), "entries/s")
}

func TestAuditSinceWithClockSkew(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	start := clk.Now()
	if err := s.AppendAudit(ctx, auditEntries(12, start)...); err != nil {
		t.Fatal(err)
	}
	late := auditEntries(2, start)
	late[0].At = start.Add(5*time.Minute + 30*time.Second) // a writer whose clock is behind
	late[1].At = start.Add(20 * time.Minute)
	if err := s.AppendAudit(ctx, late...); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		since time.Duration
		want  string
	}{
		{0, "[1 2 3 4 5 6 7 8 9 10 11 12 13 14]"},
		{5 * time.Minute, "[6 7 8 9 10 11 12 13 14]"},
		{10 * time.Minute, "[11 12 14]"},
		{20 * time.Minute, "[14]"},
		{21 * time.Minute, "[]"},
	}
	for _, tt := range tests {
		got, err := s.Audit(ctx, plugin.AuditFilter{Since: start.Add(tt.since)})
		if err != nil {
			t.Fatal(err)
		}
		seqs := []uint64{}
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if fmt.Sprint(seqs) != tt.want {
			t.Errorf("Since +%v: seqs %v, want %s", tt.since, seqs, tt.want)
		}
	}
}
