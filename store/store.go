// Package store keeps mimecast-ure's state in one bbolt file:
// configurations (secrets sealed with AES-256-GCM under a master key),
// grade snapshots, sync status, risk events and their checkpoints, API
// tokens, idempotency records, small state documents and a hash-chained
// audit log. *Store implements plugin.Store.
//
// The audit chain is keyed: each entry's Hash is an HMAC-SHA256 under a
// random audit key that is stored sealed under the master key, so editing
// the file without the master key cannot produce a chain that verifies.
//
// Layout (top-level buckets, all created at Open):
//
//	meta       schema version, the master-key check value, the sealed
//	           audit key, the audit head
//	configs    name -> configuration JSON, secret fields sealed
//	data       name -> per-configuration bucket: status, snapshot, events
//	           and their indexes, rejected records, checkpoints, marks, state
//	idem       key -> idempotency record; idemexp expiry index for cleanup
//	tokens     id -> token JSON; tokenhash SHA-256 hex -> id
//	audit      big-endian seq -> entry JSON (HMAC-chained); audittime
//	           indexes it by time for Since queries
//
// Deleting a configuration deletes its data bucket, so nothing is left behind.
package store

import (
	"context"
	"crypto/cipher"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

var _ plugin.Store = (*Store)(nil)

var (
	bktMeta      = []byte("meta")
	bktConfigs   = []byte("configs")
	bktData      = []byte("data")
	bktIdem      = []byte("idem")
	bktIdemExp   = []byte("idemexp")
	bktTokens    = []byte("tokens")
	bktTokenHash = []byte("tokenhash")
	bktAudit     = []byte("audit")
	bktAuditTime = []byte("audittime")

	topBuckets = [][]byte{bktMeta, bktConfigs, bktData, bktIdem, bktIdemExp, bktTokens, bktTokenHash, bktAudit, bktAuditTime}

	keySchema    = []byte("schema")
	keyKeyCheck  = []byte("keycheck")
	keyAuditHead = []byte("audithead")
	keyAuditKey  = []byte("auditkey")
)

const schemaVersion = "1"

// FileName is the store file's name inside the data directory.
const FileName = "mimecast-ure.db"

// FilePath returns the store file's path inside dataDir, so serve and the
// offline commands (token, audit verify, rotate-master-key) agree on it.
func FilePath(dataDir string) string { return filepath.Join(dataDir, FileName) }

// DefaultTimeout is how long Open waits for the file lock held by another
// process before giving up.
const DefaultTimeout = time.Second

// Options configures Open.
type Options struct {
	// MasterKey is the 32-byte key that seals secrets and the audit key.
	// It may be nil for tools that only read tokens or the audit log; then
	// configuration reads and writes, audit appends (and so token
	// creation and revocation) and VerifyAudit fail with a clear error.
	MasterKey []byte
	// Now is the clock (idempotency expiry, TouchToken); nil is time.Now.
	Now func() time.Time
	// Logger receives debug notes (lazy cleanups); tests pass zerolog.Nop().
	Logger zerolog.Logger
	// Timeout bounds the wait for the file lock (default DefaultTimeout).
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock and writes nothing.
	ReadOnly bool
}

// Store is the bbolt implementation of plugin.Store. It is safe for
// concurrent use.
type Store struct {
	db   *bbolt.DB
	aead cipher.AEAD // nil when opened without a master key
	// auditKey keys the audit chain; nil without a master key, or when
	// the stored audit key does not open (auditKeyErr says why).
	auditKey    []byte
	auditKeyErr error
	now         func() time.Time
	log         zerolog.Logger
}

// Open opens (creating if needed) the bbolt file at path, creates every
// bucket and checks the master key against the value sealed at first use:
// a different key fails with ErrWrongKey instead of garbage later. With a
// master key, a read-write Open also creates the audit key (32 random
// bytes, sealed) the first time.
func Open(path string, opts Options) (*Store, error) {
	s := &Store{now: opts.Now, log: opts.Logger.With().Str("component", "store").Logger()}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.MasterKey != nil {
		a, err := newAEAD(opts.MasterKey)
		if err != nil {
			return nil, err
		}
		s.aead = a
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// A 64 MiB initial map spares the first remaps (and their node copies)
	// of a growing file; it is address space, not memory.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly, InitialMmapSize: 64 << 20})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: file is locked by another process (is the server running?): %w", path, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.db = db
	if opts.ReadOnly {
		err = db.View(func(tx *bbolt.Tx) error {
			if tx.Bucket(bktMeta) == nil {
				return fmt.Errorf("%s is not a mimecast-ure store", path)
			}
			if err := s.checkKey(tx); err != nil {
				return err
			}
			s.loadAuditKey(tx)
			return nil
		})
	} else {
		err = db.Update(func(tx *bbolt.Tx) error {
			for _, name := range topBuckets {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			meta := tx.Bucket(bktMeta)
			if v := meta.Get(keySchema); v != nil && string(v) != schemaVersion {
				return fmt.Errorf("store schema %q is not supported (want %s)", v, schemaVersion)
			}
			if err := meta.Put(keySchema, []byte(schemaVersion)); err != nil {
				return err
			}
			if err := s.checkKey(tx); err != nil {
				return err
			}
			if s.aead == nil {
				return nil
			}
			if meta.Get(keyKeyCheck) == nil {
				if err := putKeyCheck(meta, s.aead); err != nil {
					return err
				}
			}
			// A missing audit key is only created for an empty log: one
			// removed from a file with entries must not be replaced
			// silently (VerifyAudit reports it).
			if meta.Get(keyAuditKey) == nil && tx.Bucket(bktAudit).Sequence() == 0 {
				if err := putAuditKey(meta, s.aead, newAuditKey()); err != nil {
					return err
				}
			}
			s.loadAuditKey(tx)
			return nil
		})
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the file; it waits for open transactions to finish.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path returns the file's path.
func (s *Store) Path() string { return s.db.Path() }

// update runs fn in a read-write transaction after checking ctx.
func (s *Store) update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// view runs fn in a read-only transaction after checking ctx.
func (s *Store) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// u64 encodes v big-endian so keys sort numerically.
func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// minIndexTime and maxIndexTime bound the times the indexes can tell
// apart: those whose UnixNano fits in an int64 (about 1678 to 2262).
var (
	minIndexTime = time.Unix(0, math.MinInt64)
	maxIndexTime = time.Unix(0, math.MaxInt64)
)

// timeBits maps a time to an unsigned number that sorts like the time.
// Times outside the int64 nanosecond range are clamped to its ends (so a
// Since in the year 2300 matches nothing instead of wrapping around).
func timeBits(t time.Time) uint64 {
	switch {
	case t.Before(minIndexTime):
		return 0
	case t.After(maxIndexTime):
		return math.MaxUint64
	}
	return uint64(t.UnixNano()) ^ (1 << 63)
}

func bitsTime(v uint64) time.Time { return time.Unix(0, int64(v^(1<<63))).UTC() }

func notFound(format string, args ...any) error {
	return plugin.Errorf(plugin.ENOTFOUND, format, args...)
}

func conflict(format string, args ...any) error {
	return plugin.Errorf(plugin.ECONFLICT, format, args...)
}

func configNotFound(name string) error { return notFound("configuration %q not found", name) }

// putJSON marshals v into b under key.
func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, buf)
}

// getJSON unmarshals the value under key into v; found is false when absent.
// json.Unmarshal copies, so nothing refers to bbolt memory afterwards.
func getJSON(b *bbolt.Bucket, key []byte, v any) (bool, error) {
	buf := b.Get(key)
	if buf == nil {
		return false, nil
	}
	if err := json.Unmarshal(buf, v); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// nonNil returns s, or an empty slice for nil, so lists encode as [] and
// never as null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
