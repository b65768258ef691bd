package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

func TestNoSecretInFile(t *testing.T) {
	ctx := context.Background()
	s, _, path := newStore(t)
	c := mustCreate(t, s, "acme")
	c2 := testConfig("acme")
	c2.Mimecast.AppKey = "UPDATEDAPPKEY-abc"
	if err := s.UpdateConfiguration(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secrets := append(c.Secrets(), c2.Secrets()...)
	if len(secrets) != 14 {
		t.Fatalf("test configuration has %d secrets, want 14", len(secrets))
	}
	for _, sec := range secrets {
		enc, _ := json.Marshal(sec)
		for _, form := range []string{sec, string(enc[1 : len(enc)-1])} {
			if bytes.Contains(raw, []byte(form)) {
				t.Errorf("store file contains a secret in clear (%d bytes long)", len(sec))
			}
		}
		for _, line := range strings.Split(sec, "\n") {
			if len(line) > 8 && bytes.Contains(raw, []byte(line)) {
				t.Errorf("store file contains part of a secret in clear")
			}
		}
	}
	// The non-secret fields are there, so the check above looks in the right place.
	if !bytes.Contains(raw, []byte(c.Mimecast.AppID)) {
		t.Errorf("store file does not contain the app id: the raw check reads the wrong bytes")
	}
}

func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ure.db")
	s := mustOpen(t, path, testKey(1), nil)
	mustCreate(t, s, "acme")
	s.Close()

	_, err := Open(path, Options{MasterKey: testKey(2), Logger: zerolog.Nop()})
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with the wrong key: err = %v, want ErrWrongKey", err)
	}
	if !strings.Contains(err.Error(), "cannot open sealed secrets: wrong master key?") {
		t.Errorf("error text = %q", err)
	}

	// Without the check value the read itself still refuses, never garbage.
	rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Delete(keyKeyCheck) })
	s = mustOpen(t, path, testKey(2), nil)
	_, err = s.Configuration(ctx, "acme")
	if !errors.Is(err, ErrWrongKey) {
		t.Errorf("Configuration with the wrong key: err = %v, want ErrWrongKey", err)
	}
	if _, err := s.Configurations(ctx); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Configurations with the wrong key: err = %v, want ErrWrongKey", err)
	}
}

func TestOpenWithoutKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ure.db")
	s := mustOpen(t, path, testKey(1), nil)
	mustCreate(t, s, "acme")
	s.Close()

	s = mustOpen(t, path, nil, nil)
	if _, err := s.Configuration(ctx, "acme"); !errors.Is(err, ErrNoKey) {
		t.Errorf("Configuration without a key: err = %v, want ErrNoKey", err)
	}
	if err := s.CreateConfiguration(ctx, testConfig("x")); !errors.Is(err, ErrNoKey) {
		t.Errorf("CreateConfiguration without a key: err = %v, want ErrNoKey", err)
	}
	// The audit log is keyed by a key sealed under the master key.
	if err := s.AppendAudit(ctx, plugin.AuditEntry{Actor: "cli", Action: "x"}); !errors.Is(err, ErrNoMasterKey) {
		t.Errorf("AppendAudit without a key: err = %v, want ErrNoMasterKey", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{MasterKey: []byte("short")}); err == nil {
		t.Errorf("Open with a 5-byte key succeeded")
	}
}

func TestSealedValueBoundToConfigAndField(t *testing.T) {
	ctx := context.Background()
	s, _, path := newStore(t)
	mustCreate(t, s, "acme")
	mustCreate(t, s, "evil")
	s.Close()

	// Copy acme's sealed app key into evil's app key, and into acme's access key.
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktConfigs)
		var acme, evil map[string]any
		if err := json.Unmarshal(b.Get([]byte("acme")), &acme); err != nil {
			return err
		}
		if err := json.Unmarshal(b.Get([]byte("evil")), &evil); err != nil {
			return err
		}
		am := acme["mimecast"].(map[string]any)
		evil["mimecast"].(map[string]any)["app_key"] = am["app_key"]
		am["access_key"] = am["app_key"]
		for name, v := range map[string]any{"acme": acme, "evil": evil} {
			buf, _ := json.Marshal(v)
			if err := b.Put([]byte(name), buf); err != nil {
				return err
			}
		}
		return nil
	})
	s = mustOpen(t, path, testKey(1), nil)
	for _, name := range []string{"acme", "evil"} {
		if _, err := s.Configuration(ctx, name); err == nil {
			t.Errorf("Configuration(%q) opened a sealed value moved from another field", name)
		}
	}
}

func TestRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ure.db")
	oldKey, newKey := testKey(1), testKey(2)
	s := mustOpen(t, path, oldKey, nil)
	want := mustCreate(t, s, "acme")
	minimal := plugin.Configuration{Name: "min", Mimecast: plugin.MimecastSettings{Auth: plugin.AuthOAuth2, ClientID: "id", ClientSecret: "CS"}}
	if err := s.CreateConfiguration(ctx, minimal); err != nil {
		t.Fatal(err)
	}
	s.Close()

	if _, err := RotateMasterKey(path, testKey(3), newKey); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("RotateMasterKey with a wrong current key: err = %v, want ErrWrongKey", err)
	}
	if _, err := RotateMasterKey(path, oldKey, []byte("short")); err == nil {
		t.Fatalf("RotateMasterKey to a short key succeeded")
	}
	if _, err := RotateMasterKey(filepath.Join(t.TempDir(), "missing.db"), oldKey, newKey); err == nil {
		t.Fatalf("RotateMasterKey of a missing file succeeded")
	}
	n, err := RotateMasterKey(path, oldKey, newKey)
	if err != nil {
		t.Fatalf("RotateMasterKey: %v", err)
	}
	if want := 7 + 1; n != want {
		t.Errorf("re-sealed %d values, want %d", n, want)
	}

	if _, err := Open(path, Options{MasterKey: oldKey}); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Open with the old key after rotation: err = %v, want ErrWrongKey", err)
	}
	// Even without the check value, the old key opens no secret.
	s = mustOpen(t, path, newKey, nil)
	got, err := s.Configuration(ctx, "acme")
	if err != nil {
		t.Fatalf("Configuration with the new key: %v", err)
	}
	if got.Mimecast.SecretKey != want.Mimecast.SecretKey || got.Controls.Okta.PrivateKey != want.Controls.Okta.PrivateKey {
		t.Errorf("secrets changed by rotation")
	}
	if got, err := s.Configuration(ctx, "min"); err != nil || got.Mimecast.ClientSecret != "CS" {
		t.Errorf("minimal configuration after rotation = %q, %v", got.Mimecast.ClientSecret, err)
	}
	s.Close()
	rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Delete(keyKeyCheck) })
	s = mustOpen(t, path, oldKey, nil)
	if _, err := s.Configuration(ctx, "acme"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("old key read after rotation: err = %v, want ErrWrongKey", err)
	}
}

func TestResolveMasterKey(t *testing.T) {
	key := testKey(7)
	b64 := base64.StdEncoding.EncodeToString(key)
	dir := t.TempDir()
	goodFile := filepath.Join(dir, "good.key")
	if err := os.WriteFile(goodFile, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortFile := filepath.Join(dir, "short.key")
	if err := os.WriteFile(shortFile, []byte(base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, b64, file string
		wantErr         bool
	}{
		{"env wins", b64, shortFile, false},
		{"env url-safe unpadded", base64.RawURLEncoding.EncodeToString(key), "", false},
		{"env short", base64.StdEncoding.EncodeToString([]byte("short")), "", true},
		{"env not base64", "not base64 !!", "", true},
		{"file", "", goodFile, false},
		{"file short", "", shortFile, true},
		{"file missing", "", filepath.Join(dir, "nope"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gen, err := ResolveMasterKey(tt.b64, tt.file, t.TempDir())
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error")
				}
				if tt.b64 != "" && strings.Contains(err.Error(), tt.b64) {
					t.Errorf("error contains the key")
				}
				return
			}
			if err != nil || gen || !bytes.Equal(got, key) {
				t.Errorf("got %d bytes, generated %v, err %v; want the key", len(got), gen, err)
			}
		})
	}

	t.Run("generated in data dir", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		k1, gen, err := ResolveMasterKey("", "", data)
		if err != nil || !gen || len(k1) != KeySize {
			t.Fatalf("first call: %d bytes, generated %v, err %v", len(k1), gen, err)
		}
		fi, err := os.Stat(filepath.Join(data, MasterKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("key file mode = %o, want 600", mode)
		}
		k2, gen, err := ResolveMasterKey("", "", data)
		if err != nil || gen || !bytes.Equal(k1, k2) {
			t.Errorf("second call: generated %v, err %v, same key %v", gen, err, bytes.Equal(k1, k2))
		}
	})
	t.Run("nothing at all", func(t *testing.T) {
		if _, _, err := ResolveMasterKey("", "", ""); err == nil {
			t.Errorf("no error without any source")
		}
	})
}

func TestLoadMasterKey(t *testing.T) {
	key := testKey(7)
	b64 := base64.StdEncoding.EncodeToString(key)
	withKey := t.TempDir()
	if err := os.WriteFile(filepath.Join(withKey, MasterKeyFile), []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := t.TempDir()
	if err := os.WriteFile(filepath.Join(badKey, MasterKeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name, b64, file, dir string
		wantKey, wantNoKey   bool
	}{
		{"env", b64, "", empty, true, false},
		{"file flag", "", filepath.Join(withKey, MasterKeyFile), empty, true, false},
		{"data dir", "", "", withKey, true, false},
		{"bad data dir key", "", "", badKey, false, false},
		{"file flag missing", "", filepath.Join(empty, "nope"), empty, false, false},
		{"none in data dir", "", "", empty, false, true},
		{"no data dir", "", "", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadMasterKey(tt.b64, tt.file, tt.dir)
			if tt.wantKey {
				if err != nil || !bytes.Equal(got, key) {
					t.Errorf("got %d bytes, %v; want the key", len(got), err)
				}
				return
			}
			if err == nil || got != nil {
				t.Fatalf("got %d bytes, no error; want an error", len(got))
			}
			if errors.Is(err, ErrNoMasterKey) != tt.wantNoKey {
				t.Errorf("err = %v; errors.Is(ErrNoMasterKey) = %v, want %v", err, !tt.wantNoKey, tt.wantNoKey)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(empty, MasterKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadMasterKey created a key file: %v", err)
	}
	_, err := LoadMasterKey("", "", empty)
	if want := "no master key: set URE_MASTER_KEY or --master-key-file, or keep " + filepath.Join(empty, MasterKeyFile); err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestUnsealCorrupt(t *testing.T) {
	a, err := newAEAD(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"clear text", sealPrefix + "!!!", sealPrefix + "AAAA"} {
		if _, err := unseal(a, v, "x"); err == nil {
			t.Errorf("unseal(%q) succeeded", v)
		}
	}
	sealed := seal(a, "v", "aad")
	if sealed == seal(a, "v", "aad") {
		t.Errorf("two seals of one value are equal: nonce reused")
	}
	if got, err := unseal(a, sealed, "aad"); err != nil || got != "v" {
		t.Errorf("unseal = %q, %v", got, err)
	}
}

// rawUpdate edits the closed store file directly, as an attacker or a
// broken disk would.
func rawUpdate(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("raw update: %v", err)
	}
}
