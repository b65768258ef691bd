package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

// Events are stored once by ID (bucket "events", ID -> JSON) with three
// key-only indexes that make every query a range scan:
//
//	ev_time  tkey                  -> nil
//	ev_user  user  0x00 tkey       -> nil
//	ev_rule  rule  0x00 tkey       -> nil
//
// where tkey is the event time (8 bytes, big-endian, ordered) followed by
// the ID. Newest first is a reverse scan; a cursor is a tkey.

// maxRejected bounds the records set aside per configuration; older ones
// are dropped as new ones arrive.
const maxRejected = 1000

// DefaultEventLimit is the page size of Events when the filter has none.
const DefaultEventLimit = 100

func tkey(at time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, timeBits(at))
	return append(k, id...)
}

func prefixed(prefix string, tk []byte) []byte {
	k := make([]byte, 0, len(prefix)+1+len(tk))
	k = append(k, prefix...)
	k = append(k, 0)
	return append(k, tk...)
}

// eventBuckets are one configuration's event buckets.
type eventBuckets struct {
	events, byTime, byUser, byRule *bbolt.Bucket
}

func openEventBuckets(cb *bbolt.Bucket) (eventBuckets, error) {
	var eb eventBuckets
	var err error
	for _, x := range []struct {
		p    **bbolt.Bucket
		name []byte
	}{{&eb.events, subEvents}, {&eb.byTime, subEvTime}, {&eb.byUser, subEvUser}, {&eb.byRule, subEvRule}} {
		if *x.p, err = sub(cb, x.name); err != nil {
			return eb, err
		}
	}
	return eb, nil
}

// SaveLogPage stores a page's events (skipping IDs already stored), its
// rejected records and the log's checkpoint in one transaction and returns
// how many events were new; ENOTFOUND if the configuration does not exist.
func (s *Store) SaveLogPage(ctx context.Context, configuration string, events []plugin.RiskEvent, rejected []plugin.Rejected, cp plugin.Checkpoint) (int, error) {
	var added int
	err := s.update(ctx, func(tx *bbolt.Tx) (err error) {
		added, err = saveLogPage(tx, configuration, events, rejected, cp)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("save %s log page of %q (%d events): %w", cp.Log, configuration, len(events), err)
	}
	return added, nil
}

func saveLogPage(tx *bbolt.Tx, configuration string, events []plugin.RiskEvent, rejected []plugin.Rejected, cp plugin.Checkpoint) (int, error) {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return 0, err
	}
	eb, err := openEventBuckets(cb)
	if err != nil {
		return 0, err
	}
	added := 0
	for i := range events {
		ok, err := putEvent(eb, &events[i])
		if err != nil {
			return 0, err
		}
		if ok {
			added++
		}
	}
	if err := putRejected(cb, rejected); err != nil {
		return 0, err
	}
	return added, putCheckpoint(cb, cp)
}

func putEvent(eb eventBuckets, e *plugin.RiskEvent) (bool, error) {
	if e.ID == "" {
		return false, fmt.Errorf("event of rule %q has no id", e.Rule)
	}
	id := []byte(e.ID)
	if eb.events.Get(id) != nil {
		return false, nil
	}
	v := *e
	v.At = v.At.UTC()
	v.User = plugin.NormalizeEmail(v.User)
	buf, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	tk := tkey(v.At, v.ID)
	for _, put := range []struct {
		b   *bbolt.Bucket
		k   []byte
		val []byte
	}{
		{eb.events, id, buf},
		{eb.byTime, tk, nil},
		{eb.byUser, prefixed(v.User, tk), nil},
		{eb.byRule, prefixed(v.Rule, tk), nil},
	} {
		if err := put.b.Put(put.k, put.val); err != nil {
			return false, fmt.Errorf("store event %s: %w", e.ID, err)
		}
	}
	return true, nil
}

func putRejected(cb *bbolt.Bucket, rejected []plugin.Rejected) error {
	if len(rejected) == 0 {
		return nil
	}
	b, err := sub(cb, subRejected)
	if err != nil {
		return err
	}
	var last uint64
	for _, r := range rejected {
		if last, err = b.NextSequence(); err != nil {
			return err
		}
		if err := putJSON(b, u64(last), r); err != nil {
			return err
		}
	}
	if last <= maxRejected {
		return nil
	}
	c := b.Cursor()
	var dead [][]byte
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= last-maxRejected; k, _ = c.Next() {
		dead = append(dead, append([]byte(nil), k...))
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func putCheckpoint(cb *bbolt.Bucket, cp plugin.Checkpoint) error {
	if cp.Log == "" {
		return plugin.Errorf(plugin.EINVALID, "a checkpoint needs its log")
	}
	b, err := sub(cb, subCheckpoints)
	if err != nil {
		return err
	}
	return putJSON(b, []byte(cp.Log), cp)
}

// Checkpoint returns a log's checkpoint, the zero value (with Log set) if
// none is stored; ENOTFOUND if the configuration does not exist.
func (s *Store) Checkpoint(ctx context.Context, configuration string, log plugin.LogKind) (plugin.Checkpoint, error) {
	var cp plugin.Checkpoint
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		cp, err = getCheckpoint(tx, configuration, log)
		return err
	})
	return cp, err
}

func getCheckpoint(tx *bbolt.Tx, configuration string, log plugin.LogKind) (plugin.Checkpoint, error) {
	cp := plugin.Checkpoint{Log: log}
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return cp, err
	}
	b, _ := sub(cb, subCheckpoints)
	if b == nil {
		return cp, nil
	}
	_, err = getJSON(b, []byte(log), &cp)
	return cp, err
}

// PutCheckpoint stores a checkpoint alone; ENOTFOUND if the configuration
// does not exist.
func (s *Store) PutCheckpoint(ctx context.Context, configuration string, cp plugin.Checkpoint) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		cb, err := cfgBucket(tx, configuration)
		if err != nil {
			return err
		}
		return putCheckpoint(cb, cp)
	})
}

// Rejected returns the records set aside for a configuration, newest
// first, at most limit (≤ 0: all kept, which is at most 1000).
func (s *Store) Rejected(ctx context.Context, configuration string, limit int) ([]plugin.Rejected, error) {
	var out []plugin.Rejected
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		out, err = listRejected(tx, configuration, limit)
		return err
	})
	return nonNil(out), err
}

func listRejected(tx *bbolt.Tx, configuration string, limit int) ([]plugin.Rejected, error) {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return nil, err
	}
	b, _ := sub(cb, subRejected)
	if b == nil {
		return nil, nil
	}
	var out []plugin.Rejected
	c := b.Cursor()
	for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
		var r plugin.Rejected
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode rejected record: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Events returns the events matching f, newest first (ties by ID,
// descending), at most f.Limit (≤ 0: DefaultEventLimit), and the cursor of
// the next page, "" at the end. A user filter uses the per-user index, a
// rule filter the per-rule index, and Since ends the scan, so a query
// costs what it returns. A malformed cursor is EINVALID.
func (s *Store) Events(ctx context.Context, configuration string, f plugin.EventFilter) ([]plugin.RiskEvent, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	var after []byte
	if f.Cursor != "" {
		var err error
		after, err = base64.RawURLEncoding.DecodeString(f.Cursor)
		if err != nil || len(after) < 8 {
			return nil, "", plugin.FieldError("cursor", "is not a cursor this server returned")
		}
	}
	f.User = plugin.NormalizeEmail(f.User)
	var out []plugin.RiskEvent
	var next string
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		out, next, err = queryEvents(tx, configuration, f, after, limit)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("read events of %q: %w", configuration, err)
	}
	return nonNil(out), next, nil
}

// queryEvents picks the narrowest index for f and scans it newest first
// from after, peeking one match past limit to know whether a next page
// exists.
func queryEvents(tx *bbolt.Tx, configuration string, f plugin.EventFilter, after []byte, limit int) ([]plugin.RiskEvent, string, error) {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return nil, "", err
	}
	eb, _ := openEventBuckets(cb)
	if eb.events == nil {
		return nil, "", nil
	}
	idx, prefix := eb.byTime, ""
	switch {
	case f.User != "":
		idx, prefix = eb.byUser, f.User
	case f.Rule != "":
		idx, prefix = eb.byRule, f.Rule
	}
	var out []plugin.RiskEvent
	var next string
	var lastTK []byte
	err = scanNewest(idx, prefix, after, f.Since, func(tk []byte) (bool, error) {
		e, err := getEvent(eb.events, tk[8:])
		if err != nil {
			return false, err
		}
		if (f.Rule != "" && e.Rule != f.Rule) || (f.User != "" && e.User != f.User) {
			return true, nil
		}
		if len(out) == limit {
			next = base64.RawURLEncoding.EncodeToString(lastTK)
			return false, nil
		}
		out = append(out, e)
		lastTK = append(lastTK[:0], tk...)
		return true, nil
	})
	return out, next, err
}

// scanNewest walks idx's keys that start with prefix+0x00 (all keys when
// prefix is ""), newest first, strictly older than the tkey after (when
// set) and not older than since, passing each key's tkey to fn until it
// returns false.
func scanNewest(idx *bbolt.Bucket, prefix string, after []byte, since time.Time, fn func(tk []byte) (bool, error)) error {
	var pfx []byte
	if prefix != "" {
		pfx = append([]byte(prefix), 0)
	}
	var start []byte
	switch {
	case after != nil:
		start = append(append([]byte(nil), pfx...), after...)
	case pfx != nil:
		start = append([]byte(prefix), 1) // just past every key with the prefix
	}
	c := idx.Cursor()
	var k []byte
	if start == nil {
		k, _ = c.Last()
	} else if k, _ = c.Seek(start); k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	minBits := uint64(0)
	if !since.IsZero() {
		minBits = timeBits(since)
	}
	for ; k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Prev() {
		tk := k[len(pfx):]
		if len(tk) < 8 {
			continue
		}
		if binary.BigEndian.Uint64(tk) < minBits {
			return nil
		}
		more, err := fn(tk)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func getEvent(b *bbolt.Bucket, id []byte) (plugin.RiskEvent, error) {
	var e plugin.RiskEvent
	v := b.Get(id)
	if v == nil {
		return e, fmt.Errorf("index names event %q which is not stored", id)
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("decode event %q: %w", id, err)
	}
	return e, nil
}

// UserEvents returns all of one user's events (the address is
// normalized), newest first; ENOTFOUND if the configuration does not exist.
func (s *Store) UserEvents(ctx context.Context, configuration, user string) ([]plugin.RiskEvent, error) {
	user = plugin.NormalizeEmail(user)
	var out []plugin.RiskEvent
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		out, err = userEvents(tx, configuration, user)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read events of %s in %q: %w", user, configuration, err)
	}
	return nonNil(out), nil
}

func userEvents(tx *bbolt.Tx, configuration, user string) ([]plugin.RiskEvent, error) {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return nil, err
	}
	eb, _ := openEventBuckets(cb)
	if eb.events == nil || user == "" {
		return nil, nil
	}
	var out []plugin.RiskEvent
	err = scanNewest(eb.byUser, user, nil, time.Time{}, func(tk []byte) (bool, error) {
		e, err := getEvent(eb.events, tk[8:])
		if err != nil {
			return false, err
		}
		out = append(out, e)
		return true, nil
	})
	return out, err
}

// PruneEvents removes the configuration's events older than before (and
// their index entries) and returns how many; ENOTFOUND if the
// configuration does not exist.
func (s *Store) PruneEvents(ctx context.Context, configuration string, before time.Time) (int, error) {
	var n int
	err := s.update(ctx, func(tx *bbolt.Tx) (err error) {
		n, err = pruneEvents(tx, configuration, before)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune events of %q: %w", configuration, err)
	}
	if n > 0 {
		s.log.Debug().Str("configuration", configuration).Int("events", n).Msg("old events pruned")
	}
	return n, nil
}

func pruneEvents(tx *bbolt.Tx, configuration string, before time.Time) (int, error) {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return 0, err
	}
	eb, err := openEventBuckets(cb)
	if err != nil {
		return 0, err
	}
	limit := timeBits(before)
	var dead [][]byte
	c := eb.byTime.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8 && binary.BigEndian.Uint64(k) < limit; k, _ = c.Next() {
		dead = append(dead, append([]byte(nil), k...))
	}
	for _, tk := range dead {
		e, err := getEvent(eb.events, tk[8:])
		if err != nil {
			return 0, err
		}
		for _, del := range []struct {
			b *bbolt.Bucket
			k []byte
		}{
			{eb.events, tk[8:]}, {eb.byTime, tk},
			{eb.byUser, prefixed(e.User, tk)}, {eb.byRule, prefixed(e.Rule, tk)},
		} {
			if err := del.b.Delete(del.k); err != nil {
				return 0, err
			}
		}
	}
	return len(dead), nil
}
