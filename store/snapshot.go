package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

// chunkUsers is how many users one snapshot value holds: large enough that
// 100,000 users are 100 puts, small enough to stay well under bbolt's
// comfortable value size.
const chunkUsers = 1000

var keySnapHead = []byte("head")

// snapHead describes a stored snapshot; its chunks follow under keys
// 'c' + big-endian chunk number.
type snapHead struct {
	Configuration string    `json:"configuration"`
	TakenAt       time.Time `json:"taken_at"`
	Users         int       `json:"users"`
	Chunks        int       `json:"chunks"`
}

func chunkKey(i int) []byte {
	k := make([]byte, 5)
	k[0] = 'c'
	binary.BigEndian.PutUint32(k[1:], uint32(i))
	return k
}

// PutSnapshot replaces the configuration's snapshot in one transaction:
// the old snapshot bucket is dropped and the new one written, so a reader
// sees either the old snapshot or the new one, never a mix. ENOTFOUND if
// the configuration does not exist.
func (s *Store) PutSnapshot(ctx context.Context, snap plugin.Snapshot) error {
	// Encode outside the write transaction: it is the expensive part, and
	// bbolt allows one writer at a time.
	chunks := make([][]byte, 0, (len(snap.Users)+chunkUsers-1)/chunkUsers)
	for i := 0; i < len(snap.Users); i += chunkUsers {
		chunks = append(chunks, encodeUsers(snap.Users[i:min(i+chunkUsers, len(snap.Users))]))
	}
	head := snapHead{Configuration: snap.Configuration, TakenAt: snap.TakenAt, Users: len(snap.Users), Chunks: len(chunks)}
	if err := s.update(ctx, func(tx *bbolt.Tx) error { return putSnapshot(tx, head, chunks) }); err != nil {
		return fmt.Errorf("put snapshot of %q (%d users): %w", snap.Configuration, len(snap.Users), err)
	}
	return nil
}

// Snapshot returns the configuration's current snapshot; ENOTFOUND if
// there is none yet (or no such configuration).
func (s *Store) Snapshot(ctx context.Context, configuration string) (plugin.Snapshot, error) {
	var snap plugin.Snapshot
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		snap, err = getSnapshot(tx, configuration)
		return err
	})
	if err != nil {
		return plugin.Snapshot{}, fmt.Errorf("read snapshot of %q: %w", configuration, err)
	}
	return snap, nil
}

// putSnapshot drops the old snapshot bucket and writes the new one.
func putSnapshot(tx *bbolt.Tx, head snapHead, chunks [][]byte) error {
	cb, err := cfgBucket(tx, head.Configuration)
	if err != nil {
		return err
	}
	if cb.Bucket(subSnapshot) != nil {
		if err := cb.DeleteBucket(subSnapshot); err != nil {
			return err
		}
	}
	b, err := cb.CreateBucket(subSnapshot)
	if err != nil {
		return err
	}
	b.FillPercent = 1 // keys are appended in order
	for i, c := range chunks {
		if err := b.Put(chunkKey(i), c); err != nil {
			return err
		}
	}
	return putJSON(b, keySnapHead, head)
}

func getSnapshot(tx *bbolt.Tx, configuration string) (plugin.Snapshot, error) {
	none := notFound("configuration %q has no snapshot yet", configuration)
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return plugin.Snapshot{}, err
	}
	b, _ := sub(cb, subSnapshot)
	if b == nil {
		return plugin.Snapshot{}, none
	}
	var head snapHead
	found, err := getJSON(b, keySnapHead, &head)
	if err != nil {
		return plugin.Snapshot{}, err
	}
	if !found {
		return plugin.Snapshot{}, none
	}
	users := make([]plugin.UserGrade, 0, head.Users)
	for i := 0; i < head.Chunks; i++ {
		v := b.Get(chunkKey(i))
		if v == nil {
			return plugin.Snapshot{}, fmt.Errorf("snapshot chunk %d missing", i)
		}
		if users, err = decodeUsers(users, v); err != nil {
			return plugin.Snapshot{}, fmt.Errorf("snapshot chunk %d: %w", i, err)
		}
	}
	if len(users) != head.Users {
		return plugin.Snapshot{}, fmt.Errorf("snapshot has %d users, its head says %d", len(users), head.Users)
	}
	return plugin.Snapshot{Configuration: configuration, TakenAt: head.TakenAt, Users: users}, nil
}

// User chunks are a compact binary encoding, several times smaller and
// faster than JSON at 100,000 users: a version byte, the user count, then
// per user the nine UserGrade fields as uvarint length + bytes.
const usersV1 = 1

func encodeUsers(us []plugin.UserGrade) []byte {
	n := 1 + binary.MaxVarintLen64
	for i := range us {
		u := &us[i]
		n += 9*binary.MaxVarintLen32 + len(u.Email) + len(u.Name) + len(u.Department) + len(u.Risk) +
			len(u.HumanError) + len(u.Sentiment) + len(u.Engagement) + len(u.Knowledge) + len(u.UserState)
	}
	b := make([]byte, 0, n)
	b = append(b, usersV1)
	b = binary.AppendUvarint(b, uint64(len(us)))
	for i := range us {
		u := &us[i]
		for _, f := range [...]string{u.Email, u.Name, u.Department, u.Risk, u.HumanError, u.Sentiment, u.Engagement, u.Knowledge, u.UserState} {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
	}
	return b
}

var errCorrupt = errors.New("corrupt user chunk")

// decodeUsers appends the users of chunk to dst. The chunk is copied into
// one string first (bbolt memory is only valid inside the transaction) and
// every field is a substring of it: one allocation per chunk.
func decodeUsers(dst []plugin.UserGrade, chunk []byte) ([]plugin.UserGrade, error) {
	if len(chunk) == 0 || chunk[0] != usersV1 {
		return dst, errCorrupt
	}
	s := string(chunk[1:])
	pos := 0
	next := func() (string, bool) {
		n, ok := uvarintAt(s, &pos)
		if !ok || n > uint64(len(s)-pos) {
			return "", false
		}
		f := s[pos : pos+int(n)]
		pos += int(n)
		return f, true
	}
	count, ok := uvarintAt(s, &pos)
	if !ok || count > uint64(len(s)) {
		return dst, errCorrupt
	}
	for range count {
		var u plugin.UserGrade
		for _, p := range [...]*string{&u.Email, &u.Name, &u.Department, &u.Risk, &u.HumanError, &u.Sentiment, &u.Engagement, &u.Knowledge, &u.UserState} {
			if *p, ok = next(); !ok {
				return dst, errCorrupt
			}
		}
		dst = append(dst, u)
	}
	if pos != len(s) {
		return dst, errCorrupt
	}
	return dst, nil
}

func uvarintAt(s string, pos *int) (uint64, bool) {
	var v uint64
	var shift uint
	for {
		if *pos >= len(s) || shift > 63 {
			return 0, false
		}
		c := s[*pos]
		*pos++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, true
		}
		shift += 7
	}
}

// PutSyncStatus stores the configuration's last sync status; ENOTFOUND if
// the configuration does not exist.
func (s *Store) PutSyncStatus(ctx context.Context, configuration string, st plugin.SyncStatus) error {
	return s.update(ctx, func(tx *bbolt.Tx) error { return putSyncStatus(tx, configuration, st) })
}

// SyncStatus returns the last stored status, State "idle" when no sync
// has been recorded yet; ENOTFOUND if the configuration does not exist.
func (s *Store) SyncStatus(ctx context.Context, configuration string) (plugin.SyncStatus, error) {
	var st plugin.SyncStatus
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		st, err = getSyncStatus(tx, configuration)
		return err
	})
	return st, err
}

func putSyncStatus(tx *bbolt.Tx, configuration string, st plugin.SyncStatus) error {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return err
	}
	return putJSON(cb, keyStatus, st)
}

func getSyncStatus(tx *bbolt.Tx, configuration string) (plugin.SyncStatus, error) {
	st := plugin.SyncStatus{State: "idle"}
	cb, err := cfgBucket(tx, configuration)
	if err != nil || cb == nil {
		return st, err
	}
	_, err = getJSON(cb, keyStatus, &st)
	return st, err
}
