package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

// auditHead is the last appended entry, kept in meta so that removing the
// newest entries (which no later entry points at) is detected too. MAC
// binds Seq and Hash under the audit key, so a head rewritten to point at
// an earlier entry does not verify.
type auditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	MAC  string `json:"mac"`
}

// canonicalAudit is the authenticated form of an entry: every field but
// Hash, in a fixed order, the time as RFC 3339 UTC with nanoseconds;
// encoding/json writes Detail's keys sorted, so the encoding is
// deterministic.
type canonicalAudit struct {
	Seq      uint64            `json:"seq"`
	At       string            `json:"at"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target"`
	Outcome  string            `json:"outcome"`
	Detail   map[string]string `json:"detail"`
	PrevHash string            `json:"prev_hash"`
}

// AuditKeySize is the audit key's length in bytes.
const AuditKeySize = 32

const (
	auditEntryDomain = "mimecast-ure audit v2\n"
	auditHeadDomain  = "mimecast-ure audit head v2\n"
)

// AuditHash returns the HMAC-SHA256 hex, under the audit key, of e's
// canonical encoding (every field except Hash, PrevHash included). The
// key is the store's audit key (sealed under the master key), so whoever
// can write the file but lacks the master key cannot recompute the chain
// after editing an entry.
func AuditHash(key []byte, e plugin.AuditEntry) string {
	d := e.Detail
	if len(d) == 0 {
		d = nil
	}
	buf, err := json.Marshal(canonicalAudit{
		Seq: e.Seq, At: e.At.UTC().Format(time.RFC3339Nano), Actor: e.Actor, Action: e.Action,
		Target: e.Target, Outcome: e.Outcome, Detail: d, PrevHash: e.PrevHash,
	})
	if err != nil {
		panic(err) // strings and a map of strings always encode
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(auditEntryDomain))
	m.Write(buf)
	return hex.EncodeToString(m.Sum(nil))
}

// headMAC authenticates the head's sequence number and hash.
func headMAC(key []byte, seq uint64, hash string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(auditHeadDomain))
	m.Write(u64(seq))
	m.Write([]byte(hash))
	return hex.EncodeToString(m.Sum(nil))
}

// equalHex compares two MACs in constant time.
func equalHex(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// AppendAudit appends entries in one transaction, in order, setting each
// one's Seq (from the bucket sequence), PrevHash and Hash (AuditHash under
// the store's audit key). Times are stored in UTC. A store opened without
// the master key cannot append (the error matches ErrNoMasterKey).
func (s *Store) AppendAudit(ctx context.Context, entries ...plugin.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	key, err := s.writeAuditKey()
	if err != nil {
		return fmt.Errorf("append %d audit entries: %w", len(entries), err)
	}
	if err := s.update(ctx, func(tx *bbolt.Tx) error { return appendAudit(tx, key, entries) }); err != nil {
		return fmt.Errorf("append %d audit entries: %w", len(entries), err)
	}
	return nil
}

// Audit returns the entries matching f in Seq order: Since ≤ At ≤ Until
// (zero bounds are open), exact Actor, Action and Target when set, Seq >
// After, at most Limit (≤ 0: all). A Since bound starts the scan at the
// first entry that can match, through the audit time index.
func (s *Store) Audit(ctx context.Context, f plugin.AuditFilter) ([]plugin.AuditEntry, error) {
	var out []plugin.AuditEntry
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		out, err = queryAudit(ctx, tx, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	return nonNil(out), nil
}

// appendAudit chains entries after the last stored one. The time index
// gets a key (running maximum of At, seq) only when an entry raises the
// running maximum: every entry before that seq is older than the key's
// time, which is what lets a Since query skip them, even if callers'
// clocks are not monotonic.
func appendAudit(tx *bbolt.Tx, key []byte, entries []plugin.AuditEntry) error {
	b, idx := tx.Bucket(bktAudit), tx.Bucket(bktAuditTime)
	b.FillPercent, idx.FillPercent = 1, 1 // append-only, keys ascending
	prev := ""
	if k, v := b.Cursor().Last(); k != nil {
		var last plugin.AuditEntry
		if err := json.Unmarshal(v, &last); err != nil {
			return fmt.Errorf("decode audit entry %x: %w", k, err)
		}
		prev = last.Hash
	}
	var maxAt uint64
	if k, _ := idx.Cursor().Last(); len(k) == 16 {
		maxAt = binary.BigEndian.Uint64(k)
	}
	var head auditHead
	for _, e := range entries {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq, e.At, e.PrevHash = seq, e.At.UTC(), prev
		e.Hash = AuditHash(key, e)
		if err := putJSON(b, u64(seq), e); err != nil {
			return err
		}
		if tb := timeBits(e.At); tb > maxAt {
			maxAt = tb
			if err := idx.Put(append(u64(tb), u64(seq)...), nil); err != nil {
				return err
			}
		}
		prev = e.Hash
		head = auditHead{Seq: seq, Hash: e.Hash}
	}
	head.MAC = headMAC(key, head.Seq, head.Hash)
	return putJSON(tx.Bucket(bktMeta), keyAuditHead, head)
}

func queryAudit(ctx context.Context, tx *bbolt.Tx, f plugin.AuditFilter) ([]plugin.AuditEntry, error) {
	if f.After == math.MaxUint64 {
		return nil, nil // nothing comes after the last possible seq (After+1 would wrap to 0)
	}
	start := f.After + 1
	if idx := tx.Bucket(bktAuditTime); idx != nil && !f.Since.IsZero() {
		k, _ := idx.Cursor().Seek(u64(timeBits(f.Since)))
		if len(k) != 16 {
			return nil, nil // every entry is older than Since
		}
		start = max(start, binary.BigEndian.Uint64(k[8:]))
	}
	var out []plugin.AuditEntry
	c := tx.Bucket(bktAudit).Cursor()
	n := 0
	for k, v := c.Seek(u64(start)); k != nil; k, v = c.Next() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var e plugin.AuditEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("decode audit entry %x: %w", k, err)
		}
		if !matchAudit(e, f) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out, nil
}

func matchAudit(e plugin.AuditEntry, f plugin.AuditFilter) bool {
	switch {
	case !f.Since.IsZero() && e.At.Before(f.Since),
		!f.Until.IsZero() && e.At.After(f.Until),
		f.Actor != "" && e.Actor != f.Actor,
		f.Action != "" && e.Action != f.Action,
		f.Target != "" && e.Target != f.Target:
		return false
	}
	return true
}

// Audit chain problems reported by VerifyAudit.
const (
	AuditChanged   = "changed"   // an entry's content no longer matches its hash
	AuditRemoved   = "removed"   // a sequence number is missing, or a link points past a missing entry
	AuditReordered = "reordered" // an entry sits under another entry's sequence number
)

// VerifyResult is the outcome of VerifyAudit.
type VerifyResult struct {
	// OK is true when the whole chain is intact.
	OK bool `json:"ok"`
	// Entries is how many entries were checked.
	Entries int `json:"entries"`
	// LastSeq is the highest sequence number found.
	LastSeq uint64 `json:"last_seq"`
	// Seq is the first entry (or, for a removal, the first missing
	// sequence number) where the chain breaks; 0 when OK.
	Seq uint64 `json:"seq,omitempty"`
	// Problem is AuditChanged, AuditRemoved or AuditReordered.
	Problem string `json:"problem,omitempty"`
	// Message says what is wrong in words.
	Message string `json:"message"`
}

// VerifyAudit walks the audit chain from the first entry and reports the
// first entry that was changed, removed or reordered, checking every
// entry's HMAC under the audit key. It needs the master key (the audit key
// is sealed under it): on a store opened without one it returns an error
// matching ErrNoMasterKey that says where the key comes from. Any other
// error means the store could not be read, not that the chain is broken.
func (s *Store) VerifyAudit(ctx context.Context) (VerifyResult, error) {
	if s.aead == nil {
		return VerifyResult{}, &keyNeededError{what: "audit verify", keyPath: s.keyPath()}
	}
	var r VerifyResult
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		r = verifyChain(ctx, tx, s.auditKey, s.auditKeyErr)
		return ctx.Err()
	})
	return r, err
}

// verifyChain checks the chain under key; keyErr says why key is nil.
func verifyChain(ctx context.Context, tx *bbolt.Tx, macKey []byte, keyErr error) VerifyResult {
	var r VerifyResult
	bad := func(seq uint64, problem, format string, args ...any) VerifyResult {
		r.Seq, r.Problem, r.Message = seq, problem, fmt.Sprintf(format, args...)
		return r
	}
	c := tx.Bucket(bktAudit).Cursor()
	if macKey == nil {
		if k, _ := c.First(); k != nil || tx.Bucket(bktAudit).Sequence() > 0 || tx.Bucket(bktMeta).Get(keyAuditHead) != nil {
			return bad(1, AuditChanged, "the audit key cannot be used, so no entry can be checked: %v", keyErr)
		}
		r.OK = true
		r.Message = "audit chain intact: 0 entries"
		return r
	}
	var prevSeq uint64
	prevHash := ""
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if r.Entries%4096 == 0 && ctx.Err() != nil {
			return bad(0, "", "verification cancelled")
		}
		if len(k) != 8 {
			return bad(prevSeq+1, AuditChanged, "audit key %x is not a sequence number", k)
		}
		key := binary.BigEndian.Uint64(k)
		r.Entries++
		r.LastSeq = key
		var e plugin.AuditEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return bad(key, AuditChanged, "entry %d is not readable: %v", key, err)
		}
		if !equalHex(AuditHash(macKey, e), e.Hash) {
			return bad(key, AuditChanged, "entry %d was changed: its content does not match its hash", key)
		}
		if e.Seq != key {
			return bad(key, AuditReordered, "entry %d holds entry %d: entries were moved", key, e.Seq)
		}
		if key != prevSeq+1 {
			return bad(prevSeq+1, AuditRemoved, "entries %d to %d are missing", prevSeq+1, key-1)
		}
		if e.PrevHash != prevHash {
			return bad(key, AuditRemoved, "entry %d does not follow entry %d: an entry was removed or replaced", key, prevSeq)
		}
		prevSeq, prevHash = key, e.Hash
	}
	var head auditHead
	found, err := getJSON(tx.Bucket(bktMeta), keyAuditHead, &head)
	if err != nil {
		return bad(prevSeq, AuditChanged, "audit head is not readable: %v", err)
	}
	if found {
		if !equalHex(headMAC(macKey, head.Seq, head.Hash), head.MAC) {
			return bad(prevSeq+1, AuditRemoved, "the audit head does not match its MAC: it was rewritten, so the newest entries may have been removed")
		}
		if head.Seq > prevSeq {
			return bad(prevSeq+1, AuditRemoved, "entries %d to %d (the newest) are missing", prevSeq+1, head.Seq)
		}
		if head.Seq == prevSeq && head.Hash != prevHash {
			return bad(prevSeq, AuditChanged, "entry %d does not match the recorded head", prevSeq)
		}
		if head.Seq < prevSeq {
			return bad(head.Seq+1, AuditChanged, "entries %d to %d were added behind the store's back: the recorded head is entry %d", head.Seq+1, prevSeq, head.Seq)
		}
	}
	if seq := tx.Bucket(bktAudit).Sequence(); seq > prevSeq {
		return bad(prevSeq+1, AuditRemoved, "entries %d to %d (the newest) are missing", prevSeq+1, seq)
	}
	if !found && prevSeq > 0 {
		return bad(prevSeq, AuditRemoved, "the audit head is missing: the newest entries may have been removed")
	}
	r.OK = true
	r.Message = fmt.Sprintf("audit chain intact: %d entries", r.Entries)
	return r
}
