package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

// runCmd runs a subcommand in-process and returns its exit code and output.
func runCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

// seedStore makes a data dir holding a configuration (with secrets) and a
// few audit entries, as a server would leave it.
func seedStore(t *testing.T, key string) string {
	t.Helper()
	dir := t.TempDir()
	k, _, err := store.ResolveMasterKey(key, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.FilePath(dir), store.Options{MasterKey: k, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	svc := plugin.NewService(plugin.ServiceOptions{Store: st, Mimecast: mimecast.Factory(mimecast.Options{}), Logger: zerolog.Nop()})
	c := plugin.Configuration{Name: "acme", Mimecast: plugin.MimecastSettings{BaseURL: "https://us-api.mimecast.com",
		AppID: "app", AppKey: "app-key-secret", AccessKey: "access-key-secret", SecretKey: mimecasttest.DefaultSecretKey}}
	if _, err := svc.CreateConfiguration(context.Background(), "test", c); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTokenCLI(t *testing.T) {
	dir := seedStore(t, testMasterKey)
	keyEnv := map[string]string{"URE_MASTER_KEY": testMasterKey}
	if code, _, e := runCmd(t, nil, "token", "create", "--data", dir, "--name", "x", "--owner", "o"); code == 0 || !strings.Contains(e, "master key") {
		t.Errorf("token create without the master key: exit %d, %q; want an error naming the master key", code, e)
	}
	code, out, errOut := runCmd(t, keyEnv, "token", "create", "--data", dir, "--name", "ci", "--owner", "ops", "--role", "operator", "--expires-in", "24h", "--configurations", "acme")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	value := regexp.MustCompile(`token: (\S+)`).FindStringSubmatch(out)
	id := regexp.MustCompile(`id:\s+(\S+)`).FindStringSubmatch(out)
	if value == nil || id == nil {
		t.Fatalf("token create output: %s", out)
	}
	code, out, _ = runCmd(t, nil, "token", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, id[1]) || strings.Contains(out, value[1]) {
		t.Fatalf("token list: %d, lists id %v, shows value %v", code, strings.Contains(out, id[1]), strings.Contains(out, value[1]))
	}
	if code, _, _ := runCmd(t, nil, "token", "create", "--data", dir, "--name", "x", "--owner", "o", "--role", "root"); code == 0 {
		t.Error("token create with role root succeeded")
	}
	if code, _, e := runCmd(t, keyEnv, "token", "revoke", "--data", dir, "--id", id[1]); code != 0 {
		t.Fatalf("token revoke: %s", e)
	}
	st, err := store.Open(store.FilePath(dir), store.Options{ReadOnly: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := st.Tokens(context.Background())
	st.Close()
	if err != nil || len(ts) != 1 || ts[0].ID != id[1] || ts[0].RevokedAt.IsZero() || ts[0].Role != plugin.RoleOperator || len(ts[0].Configurations) != 1 {
		t.Errorf("stored tokens after revoke: %+v, %v", ts, err)
	}
	if code, _, _ := runCmd(t, nil, "token", "list", "--data", t.TempDir()); code == 0 {
		t.Error("token list on an empty dir succeeded")
	}
}

func TestAuditVerifyCLI(t *testing.T) {
	dir := seedStore(t, testMasterKey)
	keyEnv := map[string]string{"URE_MASTER_KEY": testMasterKey}
	if code, _, e := runCmd(t, nil, "audit", "verify", "--data", dir); code == 0 || !strings.Contains(e, "audit verify needs the master key: set URE_MASTER_KEY or --master-key-file, or keep") {
		t.Errorf("audit verify without the key: exit %d, %q", code, e)
	}
	if code, out, e := runCmd(t, keyEnv, "audit", "verify", "--data", dir); code != 0 {
		t.Fatalf("intact chain: exit %d: %s %s", code, out, e)
	}
	// Edit the first entry's outcome behind the store's back.
	db, err := bbolt.Open(store.FilePath(dir), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k := make([]byte, 8)
		binary.BigEndian.PutUint64(k, 1)
		var e map[string]any
		if err := json.Unmarshal(b.Get(k), &e); err != nil {
			return err
		}
		e["outcome"] = "tampered"
		v, _ := json.Marshal(e)
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCmd(t, keyEnv, "audit", "verify", "--data", dir)
	if code != 1 || !strings.Contains(out, "1") {
		t.Fatalf("tampered chain: exit %d, output %q; want exit 1 naming the entry", code, out)
	}
}

func TestRotateMasterKeyCLI(t *testing.T) {
	dir := seedStore(t, testMasterKey)
	newKey := "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4="
	code, out, e := runCmd(t, map[string]string{"URE_MASTER_KEY": testMasterKey, "URE_NEW_MASTER_KEY": newKey}, "rotate-master-key", "--data", dir)
	if code != 0 {
		t.Fatalf("rotate: %d %s %s", code, out, e)
	}
	open := func(key string) error {
		k, _, err := store.ResolveMasterKey(key, "", "")
		if err != nil {
			return err
		}
		st, err := store.Open(store.FilePath(dir), store.Options{MasterKey: k, Logger: zerolog.Nop()})
		if err != nil {
			return err
		}
		defer st.Close()
		c, err := st.Configuration(context.Background(), "acme")
		if err == nil && c.Mimecast.AppKey != "app-key-secret" {
			t.Errorf("app key after rotation is wrong")
		}
		return err
	}
	if err := open(testMasterKey); err == nil {
		t.Error("the old key still opens the secrets")
	}
	if err := open(newKey); err != nil {
		t.Errorf("the new key does not open the secrets: %v", err)
	}
	if code, _, _ := runCmd(t, map[string]string{"URE_MASTER_KEY": newKey}, "rotate-master-key", "--data", dir); code == 0 {
		t.Error("rotate without a new key succeeded")
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mimecast-ure test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := serverConfig{Addr: "127.0.0.1:0", Data: dir, TLSCert: certFile, TLSKey: keyFile, ShutdownWait: time.Second, MaxBodyBytes: 1 << 20, AuthFailLimit: 10, AuthFailWindow: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	env := map[string]string{"URE_ADMIN_TOKEN": testAdminToken, "URE_MASTER_KEY": testMasterKey}
	a, err := startApp(ctx, cfg, func(k string) string { return env[k] }, zerolog.Nop(), mimecast.Options{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	if !strings.HasPrefix(a.URL, "https://") {
		t.Fatalf("URL %s is not https", a.URL)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequest("GET", a.URL+"/api/v1/manifest", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("TLS request: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil || res.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("TLS request: status %d, tls %v", res.StatusCode, res.TLS != nil)
	}
	// TLS 1.1 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(a.URL + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
}

func TestDemoStartsAndServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw, _ := os.Pipe()
	defer pr.Close()
	done := make(chan int, 1)
	go func() {
		env := map[string]string{"URE_ADMIN_TOKEN": testAdminToken}
		done <- run(ctx, []string{"demo", "--addr", "127.0.0.1:0", "--users", "50", "--log-level", "error"}, func(k string) string { return env[k] }, pw, &bytes.Buffer{})
		pw.Close()
	}()
	buf := make([]byte, 64<<10)
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out, "Stop with Ctrl-C") && time.Now().Before(deadline) {
		n, err := pr.Read(buf)
		out += string(buf[:n])
		if err != nil {
			break
		}
	}
	m := regexp.MustCompile(`server:\s+(\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, testAdminToken) {
		t.Fatalf("demo output: %s", out)
	}
	req, _ := http.NewRequest("POST", m[1]+"/api/v1/configurations/demo/fetch-records", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var recs struct{ Records []plugin.Record }
	json.NewDecoder(res.Body).Decode(&recs)
	res.Body.Close()
	if res.StatusCode != 200 || len(recs.Records) != 50 {
		t.Fatalf("demo fetch-records: %d, %d records", res.StatusCode, len(recs.Records))
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo exit code %d", code)
	}
}

func TestUnknownCommandAndEnvFlags(t *testing.T) {
	if code, _, _ := runCmd(t, nil, "explode"); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
	if code, _, _ := runCmd(t, nil); code != 2 {
		t.Errorf("no command exit %d, want 2", code)
	}
	// URE_DATA is read when --data is not given.
	dir := seedStore(t, testMasterKey)
	if code, _, e := runCmd(t, map[string]string{"URE_DATA": dir, "URE_MASTER_KEY": testMasterKey}, "audit", "verify"); code != 0 {
		t.Errorf("audit verify with URE_DATA: %d %s", code, e)
	}
}

func TestFileSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	os.WriteFile(path, []byte("mcu_from-a-file-0123456789\n"), 0o600)
	env := map[string]string{"URE_ADMIN_TOKEN_FILE": path, "URE_DATA": "/direct", "URE_DATA_FILE": path}
	get := fileSecrets(func(k string) string { return env[k] })
	if got := get("URE_ADMIN_TOKEN"); got != "mcu_from-a-file-0123456789" {
		t.Errorf("URE_ADMIN_TOKEN from its _FILE = %q", got)
	}
	if got := get("URE_DATA"); got != "/direct" {
		t.Errorf("a set variable must win over its _FILE: got %q", got)
	}
	if got := get("URE_MASTER_KEY"); got != "" {
		t.Errorf("unset without a _FILE = %q, want empty", got)
	}
	env["URE_MASTER_KEY_FILE"] = filepath.Join(dir, "missing")
	if got := get("URE_MASTER_KEY"); got != "" {
		t.Errorf("unreadable _FILE = %q, want empty", got)
	}
}
