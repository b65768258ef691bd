package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/internal/oktatest"
	"mimecast-ure/mimecast"
)

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const (
	testAdminToken = "mcu_e2e-admin-token-value-0123456789abcdef"
	testMasterKey  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// testEnv is a running server on :0 against an emulator.
type testEnv struct {
	t    testing.TB
	url  string
	emu  *mimecasttest.Server
	emuS *httptest.Server
	logs *lockedBuffer
	app  *app
	// responses collects every response body, to scan for secrets.
	responses lockedBuffer
}

func noSleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

// startEnv starts the emulator and the real server (store in a temp dir,
// debug logs captured) and stops both when the test ends.
func startEnv(t testing.TB, emuOpts mimecasttest.Options) *testEnv {
	t.Helper()
	emu := mimecasttest.New(emuOpts)
	emuS := httptest.NewServer(emu)
	t.Cleanup(emuS.Close)

	logs := &lockedBuffer{}
	log := zerolog.New(logs).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	env := map[string]string{"URE_ADMIN_TOKEN": testAdminToken, "URE_MASTER_KEY": testMasterKey}
	cfg := serverConfig{Addr: "127.0.0.1:0", Data: t.TempDir(), ShutdownWait: 5 * time.Second,
		MaxBodyBytes: 1 << 20, AuthFailLimit: 1000, AuthFailWindow: time.Minute, LogLevel: "debug"}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := startApp(ctx, cfg, func(k string) string { return env[k] }, log,
		mimecast.Options{Sleep: noSleep, MaxAttempts: 2, Timeout: 5 * time.Second})
	if err != nil {
		cancel()
		t.Fatalf("startApp: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testEnv{t: t, url: a.URL, emu: emu, emuS: emuS, logs: logs, app: a}
}

// call sends a request and decodes a JSON answer into out (if non-nil).
func (e *testEnv) call(method, path, token string, body any, out any) (int, []byte) {
	e.t.Helper()
	status, raw := sendJSON(e.t, e.url, method, path, token, body)
	e.responses.Write(raw)
	if out != nil && status < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return status, raw
}

// sendJSON sends body (nil, a raw string or []byte, or a value to encode)
// to base+path with the bearer token and returns the status and body.
func sendJSON(tb testing.TB, base, method, path, token string, body any) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// want asserts a status and, for errors, the JSON error shape.
func (e *testEnv) want(method, path, token string, body any, status int, out any) []byte {
	e.t.Helper()
	got, raw := e.call(method, path, token, body, out)
	if got != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, status, raw)
	}
	if status >= 400 {
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			e.t.Fatalf("%s %s: error body %s is not {\"error\":{code,message}}", method, path, raw)
		}
	}
	return raw
}

func demoConfigBody(e *testEnv, name string) map[string]any {
	return map[string]any{
		"name": name, "sync_interval": "15m",
		"mimecast": map[string]any{
			"base_url": e.emuS.URL, "auth": "legacy",
			"app_id": mimecasttest.DefaultAppID, "app_key": mimecasttest.DefaultAppKey,
			"access_key": mimecasttest.DefaultAccessKey, "secret_key": mimecasttest.DefaultSecretKey,
		},
		"score": map[string]any{"mapping": map[string]int{"A": 800, "B": 600, "C": 400, "D": 200, "F": 1}},
	}
}

type scoreRec struct {
	UID   string `json:"uid"`
	Type  string `json:"type"`
	Score int    `json:"score"`
	Grade string `json:"grade"`
}

func TestEndToEnd(t *testing.T) {
	e := startEnv(t, mimecasttest.Options{Users: 300, Seed: 7})
	admin := testAdminToken
	base := "/api/v1/configurations"

	// Open endpoints.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		e.want("GET", p, "", nil, 200, nil)
	}

	// Authentication: every bad credential gets the same 401 body.
	var first []byte
	for i, tok := range []string{"", "garbage", "mcu_unknown-token", "Bearer x"} {
		_, raw := e.call("GET", "/api/v1/manifest", tok, nil, nil)
		if i == 0 {
			first = raw
		}
		if !bytes.Equal(raw, first) {
			t.Errorf("401 body for token %d differs: %s vs %s", i, raw, first)
		}
		e.want("GET", "/api/v1/manifest", tok, nil, 401, nil)
	}
	if !strings.Contains(string(first), `"invalid credentials"`) {
		t.Errorf("401 body %s", first)
	}
	e.want("GET", "/api/v1/manifest", admin, nil, 200, nil)

	// Configurations: bad input first.
	e.want("POST", base, admin, `{"name": "acme",`, 400, nil)
	e.want("POST", base, admin, `{"name": 12}`, 400, nil)
	bad := demoConfigBody(e, "acme")
	bad["mimecast"].(map[string]any)["secret_key"] = "not base64!!"
	if raw := e.want("POST", base, admin, bad, 400, nil); !strings.Contains(string(raw), "secret_key") {
		t.Errorf("400 does not name the field: %s", raw)
	}
	bad = demoConfigBody(e, "acme")
	bad["sync_interval"] = "10s"
	e.want("POST", base, admin, bad, 400, nil)
	bad = demoConfigBody(e, "acme")
	bad["score"] = map[string]any{"mapping": map[string]int{"A": 100, "B": 600, "C": 400, "D": 200, "F": 1}}
	e.want("POST", base, admin, bad, 400, nil)
	bad["score"] = map[string]any{"band": "max", "mapping": map[string]int{"A": 800, "B": 600, "C": 400, "D": 200, "F": 1}}
	e.want("POST", base, admin, bad, 400, nil)
	bad["score"] = map[string]any{"band": "median"}
	e.want("POST", base, admin, bad, 400, nil)
	e.want("POST", base, admin, strings.Repeat(" ", 2<<20), 413, nil)

	var created map[string]any
	e.want("POST", base, admin, demoConfigBody(e, "acme"), 201, &created)
	mc := created["mimecast"].(map[string]any)
	for _, k := range []string{"app_key", "access_key", "secret_key"} {
		if mc[k] != "********" {
			t.Errorf("created %s = %v, want masked", k, mc[k])
		}
	}
	e.want("POST", base, admin, demoConfigBody(e, "acme"), 409, nil)
	var listed []map[string]any
	e.want("GET", base, admin, nil, 200, &listed)
	if len(listed) != 1 || listed[0]["name"] != "acme" {
		t.Errorf("configurations list: %v", listed)
	}
	e.want("GET", base+"/nope", admin, nil, 404, nil)
	e.want("POST", base+"/nope/fetch-records", admin, nil, 404, nil)

	// PUT of what GET shows keeps the secrets: validate still succeeds.
	var got map[string]any
	e.want("GET", base+"/acme", admin, nil, 200, &got)
	got["sync_interval"] = "30m"
	e.want("PUT", base+"/acme", admin, got, 200, nil)
	// Pointing the stored credentials at another host needs them sent again.
	moved := map[string]any{}
	json.Unmarshal(mustJSON(t, got), &moved)
	moved["mimecast"].(map[string]any)["base_url"] = "https://attacker.example"
	if raw := e.want("PUT", base+"/acme", admin, moved, 400, nil); !strings.Contains(string(raw), "mimecast.") {
		t.Errorf("moved base_url with masked secrets: %s", raw)
	}
	var v struct {
		Success bool
		Message string
	}
	e.want("POST", base+"/acme/validate", admin, nil, 200, &v)
	if !v.Success {
		t.Fatalf("validate: %+v", v)
	}

	// A configuration with a wrong secret validates false with a message.
	wrong := demoConfigBody(e, "wrong")
	wrong["mimecast"].(map[string]any)["secret_key"] = "d3Jvbmcta2V5LXZhbHVl"
	e.want("POST", base, admin, wrong, 201, nil)
	e.want("POST", base+"/wrong/validate", admin, nil, 200, &v)
	if v.Success || v.Message == "" {
		t.Errorf("validate with a wrong key: %+v", v)
	}
	e.want("DELETE", base+"/wrong", admin, nil, 204, nil)

	// fetch-records: every user once.
	var recs struct {
		Records []struct{ UID, Type string }
	}
	e.want("POST", base+"/acme/fetch-records", admin, nil, 200, &recs)
	if len(recs.Records) != 300 {
		t.Fatalf("fetch-records: %d records, want 300", len(recs.Records))
	}

	// fetch-scores: case-insensitive, unknown users left out, grade mapping.
	users := e.emu.Users()
	want := map[string]int{"A": 800, "B": 600, "C": 400, "D": 200, "F": 1}
	var sc struct{ Records []scoreRec }
	e.want("POST", base+"/acme/fetch-scores", admin, map[string]any{"records": []map[string]string{
		{"uid": strings.ToUpper(users[0].Email)}, {"uid": users[1].Email}, {"uid": "nobody@nowhere.example"},
	}}, 200, &sc)
	if len(sc.Records) != 2 {
		t.Fatalf("fetch-scores: %+v, want 2 records", sc.Records)
	}
	for i, r := range sc.Records {
		if r.Score != want[users[i].Risk] || r.Type != "user" {
			t.Errorf("score of %s (grade %s) = %+v", users[i].Email, users[i].Risk, r)
		}
	}
	e.want("POST", base+"/acme/fetch-scores", admin, `{"records": "x"}`, 400, nil)
	e.want("POST", base+"/acme/fetch-scores", admin, `{}`, 200, &sc)
	if len(sc.Records) != 300 {
		t.Errorf("fetch-scores with no records: %d, want all 300", len(sc.Records))
	}

	// Actions and their fields.
	var acts []struct{ Label, Value string }
	e.want("GET", base+"/acme/actions", admin, nil, 200, &acts)
	if len(acts) != 3 || acts[0].Value != "add" || acts[1].Value != "remove" || acts[2].Value != "generate" {
		t.Errorf("actions: %+v", acts)
	}
	var fields []struct {
		Key     string
		Choices []struct{ Key, Value string }
	}
	e.want("GET", base+"/acme/actions/add/fields", admin, nil, 200, &fields)
	if len(fields) == 0 || len(fields[0].Choices) < 2 || fields[0].Choices[0].Value != "create" {
		t.Errorf("add fields: %+v", fields)
	}
	e.want("GET", base+"/acme/actions/explode/fields", admin, nil, 400, nil)
	e.want("POST", base+"/acme/validate-action", admin, map[string]any{"action": map[string]any{"value": "remove", "parameters": map[string]string{"group": "create"}}}, 200, &v)
	if v.Success {
		t.Errorf("remove with group=create validated")
	}
	e.want("POST", base+"/acme/validate-action", admin, map[string]any{"action": map[string]any{"value": "add", "parameters": map[string]string{"group": "create", "name": "Risky"}}}, 200, &v)
	if !v.Success {
		t.Errorf("add/create validate: %+v", v)
	}

	// execute-action: 100 users into a new group, batched, idempotent.
	var records []map[string]string
	for _, u := range users[:100] {
		records = append(records, map[string]string{"uid": u.Email})
	}
	records = append(records, map[string]string{"uid": "not-an-email"})
	body := map[string]any{"records": records, "action": map[string]any{"label": "Add to Group", "value": "add",
		"parameters": map[string]string{"group": "create", "name": "Risky users"}}}
	e.emu.ResetStats()
	req := func(key string) (int, []byte) {
		hreq, _ := http.NewRequest("POST", e.url+base+"/acme/execute-action", bytes.NewReader(mustJSON(t, body)))
		hreq.Header.Set("Authorization", "Bearer "+admin)
		hreq.Header.Set("Idempotency-Key", key)
		res, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res.StatusCode, raw
	}
	status, raw := req("e2e-1")
	if status != 200 {
		t.Fatalf("execute-action: %d %s", status, raw)
	}
	var res struct {
		Results []struct{ UID, Status, Message string }
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 101 {
		t.Fatalf("results: %d, want 101", len(res.Results))
	}
	for _, r := range res.Results[:100] {
		if r.Status != "done" {
			t.Errorf("%s: %s %s", r.UID, r.Status, r.Message)
		}
	}
	if last := res.Results[100]; last.Status != "failed" {
		t.Errorf("invalid address: %+v", last)
	}
	calls := e.emu.Stats()["total"]
	if calls > 100/10+3 {
		t.Errorf("execute-action made %d Mimecast calls, want at most %d", calls, 100/10+3)
	}
	g, ok := e.emu.FindGroupByName("Risky users")
	if !ok || len(e.emu.GroupMembers(g.ID)) != 100 {
		t.Fatalf("group Risky users: %v members", len(e.emu.GroupMembers(g.ID)))
	}
	e.emu.ResetStats()
	status, raw2 := req("e2e-1")
	if status != 200 || !bytes.Equal(raw, raw2) {
		t.Errorf("idempotent repeat: %d, same body %v", status, bytes.Equal(raw, raw2))
	}
	if n := e.emu.Stats()["total"]; n != 0 {
		t.Errorf("idempotent repeat made %d Mimecast calls", n)
	}
	// A second run without the key: everyone is already a member -> skipped.
	status, raw = req("e2e-2")
	if status != 200 || strings.Count(string(raw), `"skipped"`) != 100 {
		t.Errorf("re-run: %d %s", status, raw)
	}
	e.want("POST", base+"/acme/execute-action", admin, map[string]any{"records": records[:1], "action": map[string]any{"value": "explode"}}, 400, nil)
	if raw := e.want("POST", base+"/acme/execute-action", admin, map[string]any{"records": records[:1],
		"action": map[string]any{"value": "remove", "parameters": map[string]string{"group": "eNoNoSuchGroup"}}}, 400, nil); !strings.Contains(string(raw), "group") {
		t.Errorf("unknown group id: %s", raw)
	}
	e.want("POST", base+"/acme/execute-action", admin, `{"records": [{"uid": 5}]}`, 400, nil)

	// Sync now and its status.
	e.want("POST", base+"/acme/sync", admin, nil, 202, nil)
	var st map[string]any
	e.want("GET", base+"/acme/sync", admin, nil, 200, &st)

	// Tokens and roles.
	var tok struct{ ID, Token string }
	e.want("POST", "/api/v1/tokens", admin, map[string]any{"name": "ro", "owner": "e2e", "role": "viewer"}, 201, &tok)
	if tok.Token == "" {
		t.Fatal("token value not shown at creation")
	}
	e.want("POST", base+"/acme/fetch-scores", tok.Token, `{}`, 200, nil)
	e.want("POST", base+"/acme/execute-action", tok.Token, body, 403, nil)
	e.want("POST", base, tok.Token, demoConfigBody(e, "x"), 403, nil)
	e.want("GET", "/api/v1/tokens", tok.Token, nil, 403, nil)
	e.want("POST", "/api/v1/tokens", admin, map[string]any{"name": "bad", "owner": "e2e", "role": "root"}, 400, nil)
	var list []map[string]any
	e.want("GET", "/api/v1/tokens", admin, nil, 200, &list)
	for _, tk := range list {
		if _, has := tk["token"]; has {
			t.Errorf("token list shows a token value: %v", tk)
		}
	}
	e.want("DELETE", "/api/v1/tokens/"+tok.ID, admin, nil, 204, nil)
	e.want("POST", base+"/acme/fetch-scores", tok.Token, `{}`, 401, nil)

	// Audit: configuration changes, actions on users, failed logins.
	var audit struct {
		Entries []struct{ Actor, Action, Target, Outcome string }
	}
	e.want("GET", "/api/v1/audit?limit=1000", admin, nil, 200, &audit)
	seen := map[string]bool{}
	for _, en := range audit.Entries {
		seen[strings.SplitN(en.Action, ".", 2)[0]] = true
	}
	for _, k := range []string{"configuration", "action", "auth", "token"} {
		if !seen[k] {
			t.Errorf("audit has no %s.* entry; actions seen %v", k, seen)
		}
	}

	// Deleting a configuration removes it and everything kept for it.
	e.want("DELETE", base+"/acme", admin, nil, 204, nil)
	e.want("GET", base+"/acme", admin, nil, 404, nil)
	e.want("POST", base+"/acme/fetch-scores", admin, `{}`, 404, nil)
	e.want("DELETE", base+"/acme", admin, nil, 404, nil)

	// No secret in any log line or response we saw (a token's value is in
	// its own creation answer only, so responses are scanned for the rest).
	logs, responses := e.logs.String(), e.responses.String()
	for _, s := range []string{mimecasttest.DefaultAppKey, mimecasttest.DefaultSecretKey, mimecasttest.DefaultAccessKey, testAdminToken, tok.Token, testMasterKey} {
		if strings.Contains(logs, s) {
			t.Errorf("a secret appears in the logs: %.6s...", s)
		}
		if s != tok.Token && strings.Contains(responses, s) {
			t.Errorf("a secret appears in a response: %.6s...", s)
		}
	}
	if !strings.Contains(logs, "/fetch-scores") {
		t.Errorf("access log missing")
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var _ = fmt.Sprintf

// TestEndToEndEventsAndControls walks the events and controls routes:
// emulator logs become events with evidence, explained scores and target
// lists, and internal senders land in the Okta and Mimecast target groups.
func TestEndToEndEventsAndControls(t *testing.T) {
	e := startEnv(t, mimecasttest.Options{Users: 200, Seed: 11, LogVolume: map[string]int{
		mimecasttest.KindURL: 400, mimecasttest.KindAttachment: 400, mimecasttest.KindImpersonation: 200, mimecasttest.KindDLP: 400}})
	admin := testAdminToken
	base := "/api/v1/configurations/acme"

	okt := oktatest.Start(t, oktatest.Options{AutoUsers: true})
	key := oktatest.NewRSAKey(t)
	okt.RegisterClient("0oa-e2e-client", &key.PublicKey)
	fileGroup := okt.AddGroup(oktatest.Group{Name: "Risky senders"})
	urlGroup := okt.AddGroup(oktatest.Group{Name: "Link senders"})
	pemKey := oktatest.PKCS8PEM(t, key)
	dlpGroup := e.emu.CreateGroup("DLP offenders")

	cfg := demoConfigBody(e, "acme")
	cfg["events"] = map[string]any{"enabled": true, "interval": "15m", "scoring": true, "half_life": "720h",
		"rules": map[string]any{"clicked_spam": map[string]any{"enabled": false}}}
	controls := map[string]any{"enabled": true, "internal_domains": []string{"example.com"},
		"okta": map[string]any{"base_url": okt.URL, "client_id": "0oa-e2e-client", "private_key": pemKey},
		"targets": map[string]any{
			"malicious_file_sent":      map[string]string{"okta_group": "Risky senders"},
			"malicious_url_sent":       map[string]string{"okta_group": urlGroup.ID},
			"content_examination_sent": map[string]string{"mimecast_group": "DLP offenders"},
		}}
	// Six scope groups are refused with the field named.
	cfg["controls"] = map[string]any{"enabled": true, "internal_domains": []string{"example.com"},
		"scope_groups": []string{"a", "b", "c", "d", "e", "f"}, "targets": map[string]any{}}
	if raw := e.want("POST", "/api/v1/configurations", admin, cfg, 400, nil); !strings.Contains(string(raw), "scope_groups") {
		t.Errorf("6 scope groups: %s", raw)
	}
	// A private key that does not parse is refused at creation.
	cfg["controls"] = map[string]any{"enabled": true, "internal_domains": []string{"example.com"},
		"okta":    map[string]any{"base_url": okt.URL, "client_id": "0oa-e2e-client", "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"},
		"targets": map[string]any{"malicious_file_sent": map[string]string{"okta_group": "Risky senders"}}}
	if raw := e.want("POST", "/api/v1/configurations", admin, cfg, 400, nil); !strings.Contains(string(raw), "private_key") {
		t.Errorf("bad Okta key: %s", raw)
	}
	cfg["controls"] = controls
	var created map[string]any
	raw := e.want("POST", "/api/v1/configurations", admin, cfg, 201, &created)
	if strings.Contains(string(raw), "PRIVATE KEY") {
		t.Fatal("the Okta private key is in a response")
	}

	var cv struct {
		Success bool
		Checks  []struct {
			Name    string
			Success bool
		}
	}
	e.want("POST", base+"/controls/validate", admin, nil, 200, &cv)
	if !cv.Success || len(cv.Checks) == 0 {
		t.Fatalf("controls/validate: %+v", cv)
	}

	// Pull now and wait until that pull (and any queued one) has finished.
	e.pullEvents(base)

	var evs struct {
		Events []struct {
			ID, Rule, User string
			Evidence       map[string]string
		}
		Next string
	}
	e.want("GET", base+"/events?limit=50", admin, nil, 200, &evs)
	if len(evs.Events) == 0 || evs.Next == "" {
		t.Fatalf("events: %d, next %q", len(evs.Events), evs.Next)
	}
	e.want("GET", base+"/events?rule=clicked_spam", admin, nil, 200, &evs)
	if len(evs.Events) != 0 {
		t.Errorf("disabled rule clicked_spam produced %d events", len(evs.Events))
	}
	e.want("GET", base+"/events?since=yesterday", admin, nil, 400, nil)
	e.want("GET", base+"/events?rule=not_a_rule", admin, nil, 400, nil)
	e.want("GET", base+"/events?rule=clicked_phishing&limit=1", admin, nil, 200, &evs)
	if len(evs.Events) != 1 || evs.Events[0].Evidence["url"] == "" {
		t.Fatalf("clicked_phishing event: %+v", evs.Events)
	}
	user := evs.Events[0].User

	var detail struct {
		UID        string
		Score      int
		GradeScore int `json:"grade_score"`
		Events     []struct {
			Rule         string
			Contribution float64
		}
	}
	e.want("GET", base+"/users/"+strings.ToUpper(user), admin, nil, 200, &detail)
	if len(detail.Events) == 0 || (detail.GradeScore > 1 && detail.Score >= detail.GradeScore) {
		t.Errorf("user detail: %+v", detail)
	}
	e.want("GET", base+"/users/nobody@nowhere.example", admin, nil, 404, nil)

	var targets struct {
		Rule  string
		Users []struct {
			UID   string
			Count int
		}
	}
	e.want("GET", base+"/targets?rule=clicked_phishing&since=30d", admin, nil, 200, &targets)
	if len(targets.Users) == 0 || targets.Users[0].Count < 1 {
		t.Errorf("targets: %+v", targets)
	}
	_, csv := e.call("GET", base+"/targets?rule=clicked_phishing&since=30d&format=csv", admin, nil, nil)
	if !strings.HasPrefix(string(csv), "uid,count,last_at") {
		t.Errorf("targets csv: %.80s", csv)
	}
	e.want("GET", base+"/targets?rule=not_a_rule", admin, nil, 400, nil)

	// Controls acted: internal senders are in the target groups, and only them.
	var cs struct {
		Counts     map[string]int
		LastErrors []string `json:"last_errors"`
	}
	e.want("GET", base+"/controls/status", admin, nil, 200, &cs)
	if cs.Counts["added"] == 0 {
		t.Fatalf("controls status: %+v", cs)
	}
	members := append(append(okt.Members(fileGroup.ID), okt.Members(urlGroup.ID)...), e.emu.GroupMembers(dlpGroup.ID)...)
	if len(members) == 0 {
		t.Fatal("no one was added to a control target group")
	}
	for _, m := range members {
		if !strings.HasSuffix(strings.ToLower(m), "@example.com") && !strings.HasPrefix(m, "00u") {
			t.Errorf("external address %s in a target group", m)
		}
	}
	t.Logf("controls: counts %v; okta file %d url %d, mimecast dlp %d", cs.Counts, len(okt.Members(fileGroup.ID)), len(okt.Members(urlGroup.ID)), len(e.emu.GroupMembers(dlpGroup.ID)))
	if len(e.emu.GroupMembers(dlpGroup.ID)) == 0 {
		t.Error("no DLP sender in the Mimecast target group")
	}

	// A second pull adds nobody again: no membership call at all.
	oktaAdds, mcAdds := okt.Calls(oktatest.EndpointAddMember), e.emu.Calls(mimecasttest.PathAddGroupMember)
	e.pullEvents(base)
	if n := okt.Calls(oktatest.EndpointAddMember) - oktaAdds; n != 0 {
		t.Errorf("second pull made %d Okta membership calls, want 0", n)
	}
	if n := e.emu.Calls(mimecasttest.PathAddGroupMember) - mcAdds; n != 0 {
		t.Errorf("second pull made %d Mimecast add-group-member calls, want 0", n)
	}
	after := len(okt.Members(fileGroup.ID)) + len(okt.Members(urlGroup.ID)) + len(e.emu.GroupMembers(dlpGroup.ID))
	if after != len(members) {
		t.Errorf("second pull changed membership: %d -> %d", len(members), after)
	}

	// The audit log shows each control addition with its evidence.
	var audit struct {
		Entries []struct {
			Action string
			Detail map[string]string
		}
	}
	e.want("GET", "/api/v1/audit?action=controls.add&limit=1000", admin, nil, 200, &audit)
	if len(audit.Entries) == 0 {
		t.Fatal("no controls.add audit entries")
	}
	for _, en := range audit.Entries {
		if en.Action != "controls.add" || en.Detail["event_id"] == "" {
			t.Errorf("audit entry %+v", en)
			break
		}
	}

	// No secret anywhere in the logs or the responses.
	logs, responses := e.logs.String(), e.responses.String()
	for _, s := range []string{pemKey[40:80], mimecasttest.DefaultSecretKey, mimecasttest.DefaultAppKey, mimecasttest.DefaultAccessKey, testAdminToken} {
		if strings.Contains(logs, s) || strings.Contains(responses, s) {
			t.Errorf("a secret appears in the logs or a response: %.6s...", s)
		}
	}
}

// pullEvents asks for an event pull and waits until it has finished.
func (e *testEnv) pullEvents(base string) {
	e.t.Helper()
	type state struct {
		Pull struct {
			Running, Queued bool
			Pulls           int
			Error           string
		}
	}
	var st state
	e.want("GET", base+"/events/pull", testAdminToken, nil, 200, &st)
	before := st.Pull.Pulls
	e.want("POST", base+"/events/pull", testAdminToken, nil, 202, nil)
	deadline := time.Now().Add(60 * time.Second)
	for {
		e.want("GET", base+"/events/pull", testAdminToken, nil, 200, &st)
		if st.Pull.Pulls > before && !st.Pull.Running && !st.Pull.Queued {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("event pull did not finish: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Pull.Error != "" {
		e.t.Fatalf("event pull failed: %s", st.Pull.Error)
	}
}
