package store

import (
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

// CreateConfiguration stores a new configuration with its secrets sealed
// and creates its data bucket; ECONFLICT if the name exists.
func (s *Store) CreateConfiguration(ctx context.Context, c plugin.Configuration) error {
	if c.Name == "" {
		return plugin.FieldError("name", "is required")
	}
	sealed, err := sealConfig(s.aead, c)
	if err != nil {
		return fmt.Errorf("create configuration %q: %w", c.Name, err)
	}
	return s.update(ctx, func(tx *bbolt.Tx) error { return createConfiguration(tx, sealed) })
}

// UpdateConfiguration replaces a configuration; ENOTFOUND if absent.
func (s *Store) UpdateConfiguration(ctx context.Context, c plugin.Configuration) error {
	sealed, err := sealConfig(s.aead, c)
	if err != nil {
		return fmt.Errorf("update configuration %q: %w", c.Name, err)
	}
	return s.update(ctx, func(tx *bbolt.Tx) error { return updateConfiguration(tx, sealed) })
}

// Configuration returns one configuration with its secrets in clear;
// ENOTFOUND if absent, ErrWrongKey (wrapped) if its secrets do not open.
func (s *Store) Configuration(ctx context.Context, name string) (plugin.Configuration, error) {
	var c plugin.Configuration
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		c, err = getConfiguration(tx, name)
		return err
	})
	if err != nil {
		return plugin.Configuration{}, err
	}
	// Opening is CPU work: do it after the transaction.
	if err := openConfig(s.aead, &c); err != nil {
		return plugin.Configuration{}, fmt.Errorf("read %w", err)
	}
	return c, nil
}

// Configurations returns every configuration, secrets in clear, sorted by
// name (byte order).
func (s *Store) Configurations(ctx context.Context) ([]plugin.Configuration, error) {
	var out []plugin.Configuration
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		out, err = listConfigurations(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := openConfig(s.aead, &out[i]); err != nil {
			return nil, fmt.Errorf("read %w", err)
		}
	}
	return nonNil(out), nil
}

// DeleteConfiguration removes a configuration and everything kept for it
// (snapshot, status, events, checkpoints, marks, state); ENOTFOUND if absent.
func (s *Store) DeleteConfiguration(ctx context.Context, name string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error { return deleteConfiguration(tx, name) })
}

func createConfiguration(tx *bbolt.Tx, sealed plugin.Configuration) error {
	name := []byte(sealed.Name)
	b := tx.Bucket(bktConfigs)
	if b.Get(name) != nil {
		return conflict("configuration %q already exists", sealed.Name)
	}
	if err := putJSON(b, name, sealed); err != nil {
		return err
	}
	// Delete removes a configuration's data, so none can be left from an
	// earlier configuration of that name; start clean regardless.
	data := tx.Bucket(bktData)
	if data.Bucket(name) != nil {
		if err := data.DeleteBucket(name); err != nil {
			return err
		}
	}
	_, err := data.CreateBucket(name)
	return err
}

func updateConfiguration(tx *bbolt.Tx, sealed plugin.Configuration) error {
	b := tx.Bucket(bktConfigs)
	if b.Get([]byte(sealed.Name)) == nil {
		return configNotFound(sealed.Name)
	}
	return putJSON(b, []byte(sealed.Name), sealed)
}

// getConfiguration returns the stored (sealed) configuration.
func getConfiguration(tx *bbolt.Tx, name string) (plugin.Configuration, error) {
	var c plugin.Configuration
	found, err := getJSON(tx.Bucket(bktConfigs), []byte(name), &c)
	if err == nil && !found {
		err = configNotFound(name)
	}
	return c, err
}

// listConfigurations returns every stored (sealed) configuration.
func listConfigurations(tx *bbolt.Tx) ([]plugin.Configuration, error) {
	var out []plugin.Configuration
	err := tx.Bucket(bktConfigs).ForEach(func(k, v []byte) error {
		var c plugin.Configuration
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decode configuration %q: %w", k, err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

func deleteConfiguration(tx *bbolt.Tx, name string) error {
	b := tx.Bucket(bktConfigs)
	if b.Get([]byte(name)) == nil {
		return configNotFound(name)
	}
	if err := b.Delete([]byte(name)); err != nil {
		return err
	}
	data := tx.Bucket(bktData)
	if data.Bucket([]byte(name)) != nil {
		return data.DeleteBucket([]byte(name))
	}
	return nil
}

// Per-configuration sub-buckets and keys.
var (
	keyStatus      = []byte("status")
	subSnapshot    = []byte("snapshot")
	subEvents      = []byte("events")
	subEvTime      = []byte("ev_time")
	subEvUser      = []byte("ev_user")
	subEvRule      = []byte("ev_rule")
	subRejected    = []byte("rejected")
	subCheckpoints = []byte("checkpoints")
	subOnce        = []byte("once")
	subState       = []byte("state")
)

// cfgBucket returns the configuration's data bucket, ENOTFOUND if the
// configuration does not exist, so that nothing is ever written for a
// configuration deleted while a sync was running.
func cfgBucket(tx *bbolt.Tx, name string) (*bbolt.Bucket, error) {
	if tx.Bucket(bktConfigs).Get([]byte(name)) == nil {
		return nil, configNotFound(name)
	}
	b := tx.Bucket(bktData).Bucket([]byte(name))
	if b == nil {
		if !tx.Writable() {
			return nil, nil
		}
		var err error
		if b, err = tx.Bucket(bktData).CreateBucket([]byte(name)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// sub returns a sub-bucket of the configuration's bucket, creating it in
// a writable transaction; nil (read-only) means "empty".
func sub(cb *bbolt.Bucket, name []byte) (*bbolt.Bucket, error) {
	if cb == nil {
		return nil, nil
	}
	if b := cb.Bucket(name); b != nil || !cb.Writable() {
		return b, nil
	}
	return cb.CreateBucket(name)
}
