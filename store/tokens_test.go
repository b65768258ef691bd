package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

func TestTokens(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	now := clk.Now()
	toks := []plugin.Token{
		{ID: "t3", Name: "late", Role: plugin.RoleViewer, Hash: "h3", CreatedAt: now.Add(2 * time.Hour)},
		{ID: "t1", Name: "early", Role: plugin.RoleAdmin, Hash: "h1", CreatedAt: now, Configurations: []string{"acme"}},
		{ID: "t2", Name: "mid", Role: plugin.RoleOperator, Hash: "h2", CreatedAt: now.Add(time.Hour), ExpiresAt: now.Add(48 * time.Hour)},
	}
	for _, tk := range toks {
		if err := s.CreateToken(ctx, tk); err != nil {
			t.Fatalf("CreateToken(%s): %v", tk.ID, err)
		}
	}
	wantCode(t, s.CreateToken(ctx, plugin.Token{ID: "t1", Hash: "other"}), plugin.ECONFLICT)
	wantCode(t, s.CreateToken(ctx, plugin.Token{ID: "t9", Hash: "h1"}), plugin.ECONFLICT)
	wantCode(t, s.CreateToken(ctx, plugin.Token{ID: "t9"}), plugin.EINVALID)

	got, err := s.TokenByHash(ctx, "h2")
	if err != nil || got.ID != "t2" || !got.ExpiresAt.Equal(now.Add(48*time.Hour)) {
		t.Errorf("TokenByHash(h2) = %+v, %v", got, err)
	}
	_, err = s.TokenByHash(ctx, "nope")
	wantCode(t, err, plugin.ENOTFOUND)

	list, err := s.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range list {
		ids = append(ids, tk.ID)
	}
	if fmt.Sprint(ids) != "[t1 t2 t3]" {
		t.Errorf("Tokens order = %v, want oldest first [t1 t2 t3]", ids)
	}

	wantCode(t, s.RevokeToken(ctx, "nope", now), plugin.ENOTFOUND)
	if err := s.RevokeToken(ctx, "t2", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "t2", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.TokenByHash(ctx, "h2")
	if !got.RevokedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("RevokedAt = %v, want the first revocation %v", got.RevokedAt, now.Add(time.Minute))
	}
}

// TestTokenByHashMissDoesHitWork checks, through allocations (which do not
// depend on the machine's speed), that an unknown hash costs what a known
// one does: a miss also decodes a token record, so a failed login's timing
// does not tell an unknown value from a revoked or expired one.
func TestTokenByHashMissDoesHitWork(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	tok := plugin.Token{
		ID: "tok_0123456789abcdef0123456789", Name: "ci deploy", Owner: "alice@acme.com", Role: plugin.RoleOperator,
		Hash: strings.Repeat("ab", 32), CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour),
		RevokedAt: clk.Now(), Configurations: []string{"acme"},
	}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	hit := testing.AllocsPerRun(200, func() { _, _ = s.TokenByHash(ctx, tok.Hash) })
	miss := testing.AllocsPerRun(200, func() { _, _ = s.TokenByHash(ctx, strings.Repeat("cd", 32)) })
	if miss < hit*0.8 || miss > hit*1.25 {
		t.Errorf("allocations per lookup: miss %.0f, hit %.0f; want them within 25%%", miss, hit)
	}
}

func TestTouchToken(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	now := clk.Now()
	if err := s.CreateToken(ctx, plugin.Token{ID: "t1", Hash: "h1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.TouchToken(ctx, "nope", now), plugin.ENOTFOUND)

	steps := []struct {
		at        time.Duration
		wantUsed  time.Duration
		wantWrite bool
	}{
		{0, 0, true},
		{10 * time.Second, 0, false},
		{59 * time.Second, 0, false},
		{60 * time.Second, 60 * time.Second, true},
		{61 * time.Second, 60 * time.Second, false},
		{5 * time.Minute, 5 * time.Minute, true},
	}
	for _, st := range steps {
		st0 := s.db.Stats()
		before := st0.TxStats.GetWrite()
		if err := s.TouchToken(ctx, "t1", now.Add(st.at)); err != nil {
			t.Fatalf("TouchToken(+%v): %v", st.at, err)
		}
		st1 := s.db.Stats()
		wrote := st1.TxStats.GetWrite() != before
		got, _ := s.TokenByHash(ctx, "h1")
		if !got.LastUsedAt.Equal(now.Add(st.wantUsed)) || wrote != st.wantWrite {
			t.Errorf("TouchToken(+%v): LastUsedAt +%v wrote %v; want +%v wrote %v", st.at, got.LastUsedAt.Sub(now), wrote, st.wantUsed, st.wantWrite)
		}
	}
}

func TestIdempotent(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	if _, ok, err := s.Idempotent(ctx, "k"); ok || err != nil {
		t.Fatalf("Idempotent before put = %v, %v", ok, err)
	}
	if err := s.PutIdempotent(ctx, "k", []byte(`{"a":1}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.PutIdempotent(ctx, "k", []byte(`{"a":2}`), time.Hour), plugin.ECONFLICT)
	wantCode(t, s.PutIdempotent(ctx, "", nil, time.Hour), plugin.EINVALID)
	wantCode(t, s.PutIdempotent(ctx, "z", nil, 0), plugin.EINVALID)
	got, ok, err := s.Idempotent(ctx, "k")
	if !ok || err != nil || string(got) != `{"a":1}` {
		t.Errorf("Idempotent = %q, %v, %v", got, ok, err)
	}

	clk.Add(time.Hour)
	if _, ok, _ := s.Idempotent(ctx, "k"); ok {
		t.Errorf("Idempotent found an expired answer")
	}
	// An expired key can be stored again.
	if err := s.PutIdempotent(ctx, "k", []byte(`{"a":3}`), time.Hour); err != nil {
		t.Fatalf("PutIdempotent over an expired key: %v", err)
	}
	if got, ok, _ := s.Idempotent(ctx, "k"); !ok || string(got) != `{"a":3}` {
		t.Errorf("Idempotent after re-put = %q, %v", got, ok)
	}
}

func TestIdempotentLazyCleanup(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	for i := range 150 {
		if err := s.PutIdempotent(ctx, fmt.Sprintf("old-%03d", i), []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutIdempotent(ctx, "long", []byte("x"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	count := func() (n int) {
		_ = s.db.View(func(tx *bbolt.Tx) error { n = tx.Bucket(bktIdem).Stats().KeyN; return nil })
		return n
	}
	for i, want := range []int{151 - 100 + 1, 151 - 150 + 2} {
		if err := s.PutIdempotent(ctx, fmt.Sprintf("new-%d", i), []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != want {
			t.Errorf("after put %d: %d records, want %d", i, got, want)
		}
	}
	if _, ok, _ := s.Idempotent(ctx, "long"); !ok {
		t.Errorf("cleanup removed an unexpired record")
	}
}

func TestMarkOnceAndState(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	mustCreate(t, s, "other")
	for i, want := range []bool{true, false, false} {
		got, err := s.MarkOnce(ctx, "acme", "nudge|r|u|2026-03-01", clk.Now())
		if err != nil || got != want {
			t.Errorf("MarkOnce #%d = %v, %v; want %v", i, got, err, want)
		}
	}
	if got, _ := s.MarkOnce(ctx, "other", "nudge|r|u|2026-03-01", clk.Now()); !got {
		t.Errorf("MarkOnce is shared between configurations")
	}

	if v, err := s.State(ctx, "acme", "controls"); v != nil || err != nil {
		t.Errorf("State before put = %q, %v; want nil, nil", v, err)
	}
	if err := s.PutState(ctx, "acme", "controls", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutState(ctx, "acme", "controls", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	v, err := s.State(ctx, "acme", "controls")
	if err != nil || !bytes.Equal(v, []byte(`{"n":2}`)) {
		t.Errorf("State = %q, %v", v, err)
	}
}

// BenchmarkTokenByHash compares a known (revoked) and an unknown hash.
func BenchmarkTokenByHash(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	now := time.Now()
	tok := plugin.Token{ID: "tok_bench", Name: "bench", Owner: "o", Role: plugin.RoleViewer, Hash: strings.Repeat("ab", 32), CreatedAt: now, RevokedAt: now}
	if err := s.CreateToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, hash string }{{"hit", tok.Hash}, {"miss", strings.Repeat("cd", 32)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = s.TokenByHash(ctx, bc.hash)
			}
		})
	}
}
