package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/bbolt"

	"mimecast-ure/plugin"
)

// KeySize is the master key's length in bytes.
const KeySize = 32

// MasterKeyFile is the file under the data directory that holds a
// generated master key.
const MasterKeyFile = "master.key"

// ErrWrongKey is returned when sealed values do not open with the master
// key given. Match it with errors.Is.
var ErrWrongKey = &plugin.Error{Code: plugin.EINTERNAL, Message: "cannot open sealed secrets: wrong master key?"}

// ErrNoKey is returned for a configuration read or write on a store
// opened without a master key.
var ErrNoKey = &plugin.Error{Code: plugin.EINTERNAL, Message: "the store was opened without a master key"}

// ErrNoMasterKey is matched (errors.Is) by the errors of LoadMasterKey
// when no key is configured, and of AppendAudit, VerifyAudit,
// CreateToken and RevokeToken on a store opened without a master key.
var ErrNoMasterKey = errors.New("no master key")

// keyNeededError says which operation needs the master key and where the
// key can come from. It matches ErrNoMasterKey and ErrNoKey, and unwraps
// to a *plugin.Error (EINTERNAL) carrying the same text, so
// plugin.ErrorMessage shows the advice.
type keyNeededError struct {
	what    string // "" for "no master key"
	keyPath string // <data>/master.key
}

func (e *keyNeededError) Error() string {
	how := "set URE_MASTER_KEY or --master-key-file, or keep " + e.keyPath
	if e.what == "" {
		return "no master key: " + how
	}
	return e.what + " needs the master key: " + how
}

func (e *keyNeededError) Is(target error) bool { return target == ErrNoMasterKey || target == ErrNoKey }

func (e *keyNeededError) Unwrap() error {
	return &plugin.Error{Code: plugin.EINTERNAL, Message: e.Error()}
}

const (
	sealPrefix = "sealed:v1:"
	keyInfo    = "mimecast-ure secrets v1"
	checkPlain = "mimecast-ure master key check"
	checkAAD   = "mimecast-ure|keycheck"
	// auditKeyAAD binds the sealed audit key to its purpose: it opens
	// nowhere else, and no other sealed value opens as the audit key.
	auditKeyAAD = "mimecast-ure|auditkey"
)

// newAEAD derives the sealing key from the master key (HKDF-SHA256, so the
// master key itself never encrypts anything) and returns AES-256-GCM.
func newAEAD(master []byte) (cipher.AEAD, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(master))
	}
	k, err := hkdf.Key(sha256.New, master, nil, keyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("sealing cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// seal encrypts plain with a fresh random nonce, binding it to aad.
func seal(a cipher.AEAD, plain, aad string) string {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	out := a.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// unseal opens a value made by seal with the same aad.
func unseal(a cipher.AEAD, sealed, aad string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", errors.New("stored secret is not sealed")
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < a.NonceSize()+a.Overhead() {
		return "", errors.New("stored secret is corrupt")
	}
	plain, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], []byte(aad))
	if err != nil {
		return "", ErrWrongKey
	}
	return string(plain), nil
}

func putKeyCheck(meta *bbolt.Bucket, a cipher.AEAD) error {
	return meta.Put(keyKeyCheck, []byte(seal(a, checkPlain, checkAAD)))
}

// newAuditKey returns AuditKeySize random bytes.
func newAuditKey() []byte {
	k := make([]byte, AuditKeySize)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return k
}

// putAuditKey stores key sealed under a.
func putAuditKey(meta *bbolt.Bucket, a cipher.AEAD, key []byte) error {
	return meta.Put(keyAuditKey, []byte(seal(a, base64.StdEncoding.EncodeToString(key), auditKeyAAD)))
}

// openAuditKey returns the stored audit key opened with a; nil and no
// error when none is stored.
func openAuditKey(meta *bbolt.Bucket, a cipher.AEAD) ([]byte, error) {
	v := meta.Get(keyAuditKey)
	if v == nil {
		return nil, nil
	}
	plain, err := unseal(a, string(v), auditKeyAAD)
	if err != nil {
		return nil, fmt.Errorf("the stored audit key does not open: it was changed or replaced: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(plain)
	if err != nil || len(k) != AuditKeySize {
		return nil, errors.New("the stored audit key is corrupt")
	}
	return k, nil
}

// loadAuditKey opens the audit key into s. A key that does not open is
// not an Open error (the master key passed its check, so the file was
// tampered with): appends then fail and VerifyAudit reports it.
func (s *Store) loadAuditKey(tx *bbolt.Tx) {
	if s.aead == nil {
		return
	}
	s.auditKey, s.auditKeyErr = openAuditKey(tx.Bucket(bktMeta), s.aead)
	if s.auditKey == nil && s.auditKeyErr == nil {
		s.auditKeyErr = errors.New("the store has no audit key (it was removed, or the store was never opened for writing with a master key)")
	}
}

// keyPath is <data>/master.key for this store's file, for messages.
func (s *Store) keyPath() string { return filepath.Join(filepath.Dir(s.Path()), MasterKeyFile) }

// writeAuditKey returns the key that signs new audit entries, or why
// there is none.
func (s *Store) writeAuditKey() ([]byte, error) {
	switch {
	case s.aead == nil:
		return nil, &keyNeededError{what: "writing the audit log", keyPath: s.keyPath()}
	case s.auditKey == nil:
		return nil, fmt.Errorf("cannot write the audit log: %w", s.auditKeyErr)
	}
	return s.auditKey, nil
}

// checkKey verifies the master key against the stored check value, if
// both exist.
func (s *Store) checkKey(tx *bbolt.Tx) error {
	if s.aead == nil {
		return nil
	}
	return checkKeyWith(tx, s.aead)
}

func checkKeyWith(tx *bbolt.Tx, a cipher.AEAD) error {
	v := tx.Bucket(bktMeta).Get(keyKeyCheck)
	if v == nil {
		return nil
	}
	plain, err := unseal(a, string(v), checkAAD)
	if err != nil {
		return ErrWrongKey
	}
	if plain != checkPlain {
		return ErrWrongKey
	}
	return nil
}

// secretNames names each secret field of c for the AAD, so a sealed value
// only opens in the field (and configuration) it was sealed for.
func secretNames(c *plugin.Configuration) map[*string]string {
	m := map[*string]string{
		&c.Mimecast.AppKey:       "mimecast.app_key",
		&c.Mimecast.AccessKey:    "mimecast.access_key",
		&c.Mimecast.SecretKey:    "mimecast.secret_key",
		&c.Mimecast.ClientSecret: "mimecast.client_secret",
	}
	if c.Events != nil && c.Events.NudgeWebhook != nil {
		m[&c.Events.NudgeWebhook.Secret] = "events.nudge_webhook.secret"
	}
	if c.Controls != nil {
		if c.Controls.Okta != nil {
			m[&c.Controls.Okta.PrivateKey] = "controls.okta.private_key"
		}
		if c.Controls.NotifyWebhook != nil {
			m[&c.Controls.NotifyWebhook.Secret] = "controls.notify_webhook.secret"
		}
	}
	return m
}

// eachSecret calls fn with every secret field of c and its AAD.
func eachSecret(c *plugin.Configuration, fn func(p *string, aad string) error) error {
	names := secretNames(c)
	for i, p := range c.SecretPointers() {
		field, ok := names[p]
		if !ok {
			// A secret field added to plugin later: still sealed and bound
			// to its position among the secrets.
			field = fmt.Sprintf("secret.%d", i)
		}
		if err := fn(p, "mimecast-ure|v1|"+c.Name+"|"+field); err != nil {
			return fmt.Errorf("configuration %q field %s: %w", c.Name, field, err)
		}
	}
	return nil
}

// sealConfig returns a copy of c with every non-empty secret sealed.
func sealConfig(a cipher.AEAD, c plugin.Configuration) (plugin.Configuration, error) {
	if a == nil {
		return c, ErrNoKey
	}
	c = c.Clone()
	err := eachSecret(&c, func(p *string, aad string) error {
		if *p != "" {
			*p = seal(a, *p, aad)
		}
		return nil
	})
	return c, err
}

// openConfig opens every sealed secret of c in place.
func openConfig(a cipher.AEAD, c *plugin.Configuration) error {
	if a == nil {
		return ErrNoKey
	}
	return eachSecret(c, func(p *string, aad string) error {
		if *p == "" {
			return nil
		}
		v, err := unseal(a, *p, aad)
		if err != nil {
			return err
		}
		*p = v
		return nil
	})
}

// LoadMasterKey finds the master key like ResolveMasterKey but never
// generates one: with none configured and no <dataDir>/master.key it
// returns an error matching ErrNoMasterKey (errors.Is) that says where a
// key can come from. Offline commands that need the key (audit verify,
// token create and revoke) use it. Errors never contain the key.
func LoadMasterKey(b64, keyFile, dataDir string) ([]byte, error) {
	if strings.TrimSpace(b64) != "" {
		k, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("URE_MASTER_KEY: %w", err)
		}
		return k, nil
	}
	if keyFile != "" {
		return readKeyFile(keyFile)
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	if dataDir == "" {
		path = filepath.Join("<data>", MasterKeyFile)
	}
	k, err := readKeyFile(path)
	if dataDir == "" || errors.Is(err, fs.ErrNotExist) {
		return nil, &keyNeededError{keyPath: path}
	}
	return k, err
}

// ResolveMasterKey finds the master key: b64 (URE_MASTER_KEY) wins, then
// keyFile (--master-key-file), then <dataDir>/master.key, which is
// generated (32 random bytes, base64, mode 0600) when absent; generated
// is then true so the caller can warn. Keys are standard or URL-safe
// base64 of exactly 32 bytes. Errors never contain the key.
func ResolveMasterKey(b64, keyFile, dataDir string) (key []byte, generated bool, err error) {
	if strings.TrimSpace(b64) != "" || keyFile != "" {
		k, err := LoadMasterKey(b64, keyFile, dataDir)
		return k, false, err
	}
	if dataDir == "" {
		return nil, false, errors.New("no master key: set URE_MASTER_KEY, --master-key-file or a data directory")
	}
	k, err := LoadMasterKey("", "", dataDir)
	if !errors.Is(err, ErrNoMasterKey) {
		return k, false, err
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data directory: %w", err)
	}
	k = make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, false, fmt.Errorf("generate master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create master key file %s: %w", path, err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return nil, false, fmt.Errorf("write master key file %s: %w", path, err)
	}
	return k, true, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	k, err := decodeKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("must be %d bytes base64-encoded, got %d bytes", KeySize, len(k))
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("must be %d bytes base64-encoded (e.g. openssl rand -base64 32); it is not valid base64", KeySize)
}

// RotateMasterKey re-seals every stored secret of the store file at path
// from oldKey to newKey in one transaction and returns how many values it
// re-sealed (configuration secrets; the audit key, re-sealed in the same
// transaction so the audit chain still verifies, is not counted). The store must not be open elsewhere. Afterwards oldKey opens
// nothing; on any error nothing changed.
func RotateMasterKey(path string, oldKey, newKey []byte) (int, error) {
	oldA, err := newAEAD(oldKey)
	if err != nil {
		return 0, fmt.Errorf("current key: %w", err)
	}
	newA, err := newAEAD(newKey)
	if err != nil {
		return 0, fmt.Errorf("new key: %w", err)
	}
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: DefaultTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return 0, fmt.Errorf("rotate master key: %s is locked by another process (stop the server first): %w", path, err)
	}
	if err != nil {
		return 0, fmt.Errorf("rotate master key: open %s: %w", path, err)
	}
	defer db.Close()
	n := 0
	err = db.Update(func(tx *bbolt.Tx) error {
		var err error
		n, err = rotate(tx, oldA, newA)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rotate master key: %w", err)
	}
	return n, nil
}

// rotate re-seals every configuration's secrets, the audit key (created
// if the store has none yet) and the key check value.
func rotate(tx *bbolt.Tx, oldA, newA cipher.AEAD) (int, error) {
	meta := tx.Bucket(bktMeta)
	configs := tx.Bucket(bktConfigs)
	if meta == nil || configs == nil || tx.Bucket(bktAudit) == nil {
		return 0, errors.New("not a mimecast-ure store")
	}
	if err := checkKeyWith(tx, oldA); err != nil {
		return 0, err
	}
	n := 0
	type kv struct{ k, v []byte }
	var out []kv
	err := configs.ForEach(func(k, v []byte) error {
		var c plugin.Configuration
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("configuration %q: %w", k, err)
		}
		err := eachSecret(&c, func(p *string, aad string) error {
			if *p == "" {
				return nil
			}
			plain, err := unseal(oldA, *p, aad)
			if err != nil {
				return err
			}
			*p = seal(newA, plain, aad)
			n++
			return nil
		})
		if err != nil {
			return err
		}
		buf, err := json.Marshal(c)
		if err != nil {
			return err
		}
		out = append(out, kv{append([]byte(nil), k...), buf})
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, e := range out {
		if err := configs.Put(e.k, e.v); err != nil {
			return 0, err
		}
	}
	auditKey, err := openAuditKey(meta, oldA)
	if err != nil {
		return 0, err
	}
	if auditKey == nil && tx.Bucket(bktAudit).Sequence() == 0 {
		auditKey = newAuditKey()
	}
	if auditKey != nil {
		if err := putAuditKey(meta, newA, auditKey); err != nil {
			return 0, err
		}
	}
	if err := putKeyCheck(meta, newA); err != nil {
		return 0, err
	}
	return n, nil
}
