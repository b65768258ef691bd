package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

// touchEvery is how stale a token's LastUsedAt must be before TouchToken
// writes: authentication calls it on every request, and a write
// transaction (with fsync) per request would be the server's bottleneck.
const touchEvery = time.Minute

// CreateToken stores a token (its Hash, never its value); ECONFLICT if the
// id or the hash is already stored. Every change to access rights is
// audited, so a store that cannot write the audit log (opened without the
// master key) refuses it with an error matching ErrNoMasterKey.
func (s *Store) CreateToken(ctx context.Context, t plugin.Token) error {
	if t.ID == "" || t.Hash == "" {
		return plugin.Errorf(plugin.EINVALID, "a token needs an id and a hash")
	}
	if _, err := s.writeAuditKey(); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return s.update(ctx, func(tx *bbolt.Tx) error { return createToken(tx, t) })
}

// TokenByHash finds a token by the SHA-256 hex of its value; ENOTFOUND.
// The hash is looked up as a key, so no stored value is compared with the
// caller's input byte by byte. An unknown hash costs what a known one
// does: the token lookup and the decoding of a record of a token's size
// happen either way, so a failed login's timing does not tell an unknown
// value from a revoked or expired one.
func (s *Store) TokenByHash(ctx context.Context, hash string) (plugin.Token, error) {
	var t plugin.Token
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		id := tx.Bucket(bktTokenHash).Get([]byte(hash))
		if id == nil {
			missToken(tx)
			return errNoSuchToken
		}
		var err error
		t, err = getToken(tx, string(id))
		return err
	})
	return t, err
}

// errNoSuchToken is TokenByHash's miss, built once so that a miss costs
// no more than a hit.
var errNoSuchToken = &plugin.Error{Code: plugin.ENOTFOUND, Message: "no such token"}

// dummyTokenID is never a token id (ids are generated without spaces).
const dummyTokenID = "no such token"

// dummyToken is a token record of typical size that missToken decodes.
const dummyToken = `{"id":"tok_00000000000000000000","name":"dummy","owner":"nobody@example.invalid",` +
	`"role":"viewer","hash":"0000000000000000000000000000000000000000000000000000000000000000",` +
	`"created_at":"2000-01-01T00:00:00Z","last_used_at":"2000-01-01T00:00:00Z"}`

// missToken does on a miss the work a hit does after the index lookup: a
// lookup in the tokens bucket and the decoding of a token record.
func missToken(tx *bbolt.Tx) {
	v := tx.Bucket(bktTokens).Get([]byte(dummyTokenID))
	if v == nil {
		v = []byte(dummyToken)
	}
	var t plugin.Token
	_ = json.Unmarshal(v, &t)
}

// Tokens lists every token, revoked ones too, oldest first (ties by id).
func (s *Store) Tokens(ctx context.Context) ([]plugin.Token, error) {
	var out []plugin.Token
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		out, err = listTokens(tx)
		return err
	})
	return nonNil(out), err
}

// RevokeToken marks a token revoked at at; ENOTFOUND. Revoking twice
// keeps the first time. Like CreateToken it needs a store that can write
// the audit log.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) error {
	if _, err := s.writeAuditKey(); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		t, err := getToken(tx, id)
		if err != nil || !t.RevokedAt.IsZero() {
			return err
		}
		t.RevokedAt = at
		return putJSON(tx.Bucket(bktTokens), []byte(id), t)
	})
}

// TouchToken records a use at at; ENOTFOUND. It only writes when the
// stored LastUsedAt is more than a minute older, so calling it on every
// request usually costs one read transaction.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	var t plugin.Token
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		t, err = getToken(tx, id)
		return err
	})
	if err != nil || at.Sub(t.LastUsedAt) < touchEvery {
		return err
	}
	return s.update(ctx, func(tx *bbolt.Tx) error {
		t, err := getToken(tx, id)
		if err != nil || at.Sub(t.LastUsedAt) < touchEvery {
			return err // another request touched it meanwhile
		}
		t.LastUsedAt = at
		return putJSON(tx.Bucket(bktTokens), []byte(id), t)
	})
}

func createToken(tx *bbolt.Tx, t plugin.Token) error {
	b, idx := tx.Bucket(bktTokens), tx.Bucket(bktTokenHash)
	if b.Get([]byte(t.ID)) != nil {
		return conflict("token %q already exists", t.ID)
	}
	if idx.Get([]byte(t.Hash)) != nil {
		return conflict("a token with that value already exists")
	}
	if err := idx.Put([]byte(t.Hash), []byte(t.ID)); err != nil {
		return err
	}
	return putJSON(b, []byte(t.ID), t)
}

func getToken(tx *bbolt.Tx, id string) (plugin.Token, error) {
	var t plugin.Token
	found, err := getJSON(tx.Bucket(bktTokens), []byte(id), &t)
	if err == nil && !found {
		err = notFound("token %q not found", id)
	}
	return t, err
}

func listTokens(tx *bbolt.Tx) ([]plugin.Token, error) {
	var out []plugin.Token
	err := tx.Bucket(bktTokens).ForEach(func(k, v []byte) error {
		var t plugin.Token
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode token %q: %w", k, err)
		}
		out = append(out, t)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// idemRecord is one stored idempotent answer.
type idemRecord struct {
	Expires time.Time `json:"expires"`
	Answer  []byte    `json:"answer"`
}

// idemSweep bounds how many expired records one PutIdempotent removes.
const idemSweep = 100

// Idempotent returns the stored answer for key; ok is false when there is
// none or it has expired.
func (s *Store) Idempotent(ctx context.Context, key string) ([]byte, bool, error) {
	var r idemRecord
	var found bool
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		found, err = getJSON(tx.Bucket(bktIdem), []byte(key), &r)
		return err
	})
	if err != nil || !found || !s.now().Before(r.Expires) {
		return nil, false, err
	}
	return r.Answer, true, nil
}

// PutIdempotent stores answer for key until ttl has passed; ECONFLICT if
// an unexpired answer exists. Each call also removes up to 100 expired
// records, oldest first, through the expiry index.
func (s *Store) PutIdempotent(ctx context.Context, key string, answer []byte, ttl time.Duration) error {
	if key == "" || ttl <= 0 {
		return plugin.Errorf(plugin.EINVALID, "an idempotency record needs a key and a positive ttl")
	}
	now := s.now()
	swept := 0
	err := s.update(ctx, func(tx *bbolt.Tx) (err error) {
		if swept, err = sweepIdem(tx, now); err != nil {
			return err
		}
		return putIdem(tx, key, idemRecord{Expires: now.Add(ttl), Answer: answer}, now)
	})
	if err == nil && swept > 0 {
		s.log.Debug().Int("records", swept).Msg("expired idempotency records removed")
	}
	return err
}

func putIdem(tx *bbolt.Tx, key string, r idemRecord, now time.Time) error {
	b, exp := tx.Bucket(bktIdem), tx.Bucket(bktIdemExp)
	var old idemRecord
	found, err := getJSON(b, []byte(key), &old)
	if err != nil {
		return err
	}
	if found {
		if now.Before(old.Expires) {
			return conflict("an answer for this idempotency key is already stored")
		}
		if err := exp.Delete(idemExpKey(old.Expires, key)); err != nil {
			return err
		}
	}
	if err := exp.Put(idemExpKey(r.Expires, key), nil); err != nil {
		return err
	}
	return putJSON(b, []byte(key), r)
}

func idemExpKey(t time.Time, key string) []byte {
	k := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(k, timeBits(t))
	return append(k, key...)
}

// sweepIdem removes up to idemSweep expired records and their index keys.
func sweepIdem(tx *bbolt.Tx, now time.Time) (int, error) {
	b, exp := tx.Bucket(bktIdem), tx.Bucket(bktIdemExp)
	var dead [][]byte
	c := exp.Cursor()
	for k, _ := c.First(); k != nil && len(dead) < idemSweep; k, _ = c.Next() {
		if len(k) < 8 || !bitsTime(binary.BigEndian.Uint64(k)).After(now) {
			dead = append(dead, append([]byte(nil), k...))
			continue
		}
		break
	}
	for _, k := range dead {
		if err := exp.Delete(k); err != nil {
			return 0, err
		}
		if len(k) >= 8 {
			if err := b.Delete(k[8:]); err != nil {
				return 0, err
			}
		}
	}
	return len(dead), nil
}

// MarkOnce records key for the configuration at at and reports whether it
// was new; ENOTFOUND if the configuration does not exist.
func (s *Store) MarkOnce(ctx context.Context, configuration, key string, at time.Time) (bool, error) {
	var fresh bool
	err := s.update(ctx, func(tx *bbolt.Tx) (err error) {
		fresh, err = markOnce(tx, configuration, key, at)
		return err
	})
	return fresh, err
}

// PutState stores a small document under key for the configuration;
// ENOTFOUND if the configuration does not exist.
func (s *Store) PutState(ctx context.Context, configuration, key string, v []byte) error {
	return s.update(ctx, func(tx *bbolt.Tx) error { return putState(tx, configuration, key, v) })
}

// State returns the document under key, nil (and no error) when none was
// stored; ENOTFOUND if the configuration does not exist.
func (s *Store) State(ctx context.Context, configuration, key string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		out, err = getState(tx, configuration, key)
		return err
	})
	return out, err
}

func markOnce(tx *bbolt.Tx, configuration, key string, at time.Time) (bool, error) {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return false, err
	}
	b, err := sub(cb, subOnce)
	if err != nil {
		return false, err
	}
	if b.Get([]byte(key)) != nil {
		return false, nil
	}
	return true, b.Put([]byte(key), u64(timeBits(at)))
}

func putState(tx *bbolt.Tx, configuration, key string, v []byte) error {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return err
	}
	b, err := sub(cb, subState)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), v)
}

// getState copies the document out: bbolt memory is only valid inside
// the transaction.
func getState(tx *bbolt.Tx, configuration, key string) ([]byte, error) {
	cb, err := cfgBucket(tx, configuration)
	if err != nil {
		return nil, err
	}
	b, _ := sub(cb, subState)
	if b == nil {
		return nil, nil
	}
	if v := b.Get([]byte(key)); v != nil {
		return append([]byte{}, v...), nil
	}
	return nil, nil
}
