package plugin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/actions"
	"mimecast-ure/detect"
	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

func TestConfigurationLifecycle(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 10})
	ctx := context.Background()
	secret := mimecasttest.DefaultSecretKey

	t.Run("create answers masked secrets and defaults", func(t *testing.T) {
		c := e.cfg
		if c.Mimecast.SecretKey != plugin.Masked || c.Mimecast.AppKey != plugin.Masked || c.Mimecast.AccessKey != plugin.Masked {
			t.Errorf("secrets not masked: %+v", c.Mimecast)
		}
		if got, want := time.Duration(c.SyncInterval), plugin.DefaultSyncInterval; got != want {
			t.Errorf("sync_interval = %v, want %v", got, want)
		}
		if c.CreatedAt.IsZero() {
			t.Errorf("created_at not set")
		}
	})
	t.Run("duplicate name conflicts", func(t *testing.T) {
		_, err := e.svc.CreateConfiguration(ctx, "admin", plugin.Configuration{Name: "acme", Mimecast: e.settings()})
		mustCode(t, err, plugin.ECONFLICT)
	})
	t.Run("bad fields name the field", func(t *testing.T) {
		cases := []struct {
			name  string
			edit  func(c *plugin.Configuration)
			field string
		}{
			{"bad url", func(c *plugin.Configuration) { c.Mimecast.BaseURL = "ftp://x" }, "mimecast.base_url"},
			{"short interval", func(c *plugin.Configuration) { c.SyncInterval = plugin.Duration(time.Second) }, "sync_interval"},
			{"secret not base64", func(c *plugin.Configuration) { c.Mimecast.SecretKey = "not base64!" }, "mimecast.secret_key"},
			{"masked secret on create", func(c *plugin.Configuration) { c.Mimecast.AccessKey = plugin.Masked }, "mimecast.access_key"},
			{"score above range", func(c *plugin.Configuration) {
				c.Score.Mapping = map[string]int{"A": 1001, "B": 600, "C": 400, "D": 200, "F": 1}
			}, "score.mapping.A"},
			{"unknown band", func(c *plugin.Configuration) { c.Score.Band = "huge" }, "score.band"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				c := plugin.Configuration{Name: "other", Mimecast: e.settings()}
				tc.edit(&c)
				_, err := e.svc.CreateConfiguration(ctx, "admin", c)
				mustCode(t, err, plugin.EINVALID)
				var pe *plugin.Error
				if !asError(err, &pe) || pe.Field != tc.field {
					t.Errorf("field = %q, want %q (%v)", fieldOf(err), tc.field, err)
				}
			})
		}
	})
	t.Run("update keeps masked secrets and the path name wins", func(t *testing.T) {
		c := e.cfg // as answered: secrets masked
		c.Name = "ignored"
		c.SyncInterval = plugin.Duration(15 * time.Minute)
		got, err := e.svc.UpdateConfiguration(ctx, "admin", "acme", c)
		if err != nil {
			t.Fatalf("UpdateConfiguration: %v", err)
		}
		if got.Name != "acme" || time.Duration(got.SyncInterval) != 15*time.Minute {
			t.Errorf("got name %q interval %v", got.Name, time.Duration(got.SyncInterval))
		}
		stored, err := e.st.Configuration(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if stored.Mimecast.SecretKey != secret {
			t.Errorf("stored secret changed by a masked update")
		}
		if _, err := e.svc.UpdateConfiguration(ctx, "admin", "nope", c); plugin.ErrorCode(err) != plugin.ENOTFOUND {
			t.Errorf("update of missing: %v, want not_found", err)
		}
	})
	t.Run("get and list are redacted", func(t *testing.T) {
		g, err := e.svc.GetConfiguration(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		l, err := e.svc.ListConfigurations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal([]any{g, l})
		if strings.Contains(string(b), secret) || strings.Contains(string(b), mimecasttest.DefaultAccessKey) {
			t.Errorf("a secret leaked: %s", b)
		}
		if len(l) != 1 || l[0].Name != "acme" {
			t.Errorf("list = %+v", l)
		}
	})
	t.Run("every change is audited without secrets", func(t *testing.T) {
		if _, err := e.svc.CreateConfiguration(ctx, "root", plugin.Configuration{Name: "gone", Mimecast: e.settings()}); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteConfiguration(ctx, "root", "gone"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.GetConfiguration(ctx, "gone"); plugin.ErrorCode(err) != plugin.ENOTFOUND {
			t.Errorf("get after delete: %v", err)
		}
		entries, err := e.svc.Audit(ctx, plugin.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{plugin.AuditConfigCreate: false, plugin.AuditConfigUpdate: false, plugin.AuditConfigDelete: false}
		for _, en := range entries {
			if _, ok := want[en.Action]; ok && en.Outcome == plugin.AuditOK {
				want[en.Action] = true
			}
		}
		for a, seen := range want {
			if !seen {
				t.Errorf("no successful %s audit entry", a)
			}
		}
		b, _ := json.Marshal(entries)
		if strings.Contains(string(b), secret) || strings.Contains(string(b), mimecasttest.DefaultAccessKey) {
			t.Errorf("a secret leaked into the audit log")
		}
	})
}

func TestValidateConfiguration(t *testing.T) {
	ctx := context.Background()
	t.Run("ok", func(t *testing.T) {
		e := newCoreEnv(t, mimecasttest.Options{Users: 5})
		got, err := e.svc.ValidateConfiguration(ctx, "acme")
		if err != nil || !got.Success {
			t.Fatalf("got %+v, %v; want success", got, err)
		}
	})
	t.Run("missing configuration", func(t *testing.T) {
		e := newCoreEnv(t, mimecasttest.Options{Users: 5})
		_, err := e.svc.ValidateConfiguration(ctx, "nope")
		mustCode(t, err, plugin.ENOTFOUND)
	})
	t.Run("no awareness package", func(t *testing.T) {
		e := newCoreEnv(t, mimecasttest.Options{Users: 5, NoAwarenessPackage: true})
		got, err := e.svc.ValidateConfiguration(ctx, "acme")
		if err != nil || got.Success || !strings.Contains(got.Message, "no Awareness Training package") {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("bad keys", func(t *testing.T) {
		e := newCoreEnv(t, mimecasttest.Options{Users: 5})
		s := e.settings()
		s.SecretKey = "d3Jvbmcgc2VjcmV0IGtleSB2YWx1ZQ=="
		if _, err := e.svc.CreateConfiguration(ctx, "admin", plugin.Configuration{Name: "bad", Mimecast: s}); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.ValidateConfiguration(ctx, "bad")
		if err != nil || got.Success || got.Message == "" {
			t.Fatalf("got %+v, %v", got, err)
		}
		if strings.Contains(got.Message, s.SecretKey) {
			t.Errorf("message leaks the secret")
		}
		t.Logf("message: %s", got.Message)
	})
	t.Run("binding expired", func(t *testing.T) {
		e := newCoreEnv(t, mimecasttest.Options{Users: 5})
		e.emu.SetFaults(mimecasttest.Faults{BindingExpireAfter: 1})
		if got, _ := e.svc.ValidateConfiguration(ctx, "acme"); !got.Success {
			t.Fatalf("first validation: %+v", got)
		}
		got, err := e.svc.ValidateConfiguration(ctx, "acme")
		if err != nil || got.Success {
			t.Fatalf("got %+v, %v", got, err)
		}
		t.Logf("message: %s", got.Message)
	})
	t.Run("unreachable", func(t *testing.T) {
		e := newCoreEnv(t, mimecasttest.Options{Users: 5})
		e.srv.Close()
		got, err := e.svc.ValidateConfiguration(ctx, "acme")
		if err != nil || got.Success || !strings.Contains(got.Message, "could not reach Mimecast") {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
}

func TestFetchRecordsAndScores(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 40, Seed: 3})
	ctx := context.Background()
	users := e.emu.Users()
	odd := users[0].Email
	e.emu.SetGrade(odd, "e") // not a SAFE grade
	lower := users[1].Email
	e.emu.SetGrade(lower, " b ")

	recs, err := e.svc.FetchRecords(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(recs), len(users); got != want {
		t.Fatalf("records = %d, want %d", got, want)
	}
	for _, r := range recs {
		if r.Type != "user" || r.UID != plugin.NormalizeEmail(r.UID) {
			t.Fatalf("record %+v not a normalized user", r)
		}
	}
	all := e.scores(e.svc)
	if got, want := len(all), len(users)-1; got != want {
		t.Errorf("scored users = %d, want %d (the unknown grade is left out)", got, want)
	}
	if _, ok := all[plugin.NormalizeEmail(odd)]; ok {
		t.Errorf("user with unknown grade was scored")
	}
	if r := all[plugin.NormalizeEmail(lower)]; r.Grade != "B" || r.Score != 600 {
		t.Errorf("lower-case grade: %+v, want B/600", r)
	}
	band := map[string]int{"A": 800, "B": 600, "C": 400, "D": 200, "F": 1}
	for _, u := range users[2:] {
		r, ok := all[plugin.NormalizeEmail(u.Email)]
		if !ok || r.Score != band[u.Risk] || r.Grade != u.Risk {
			t.Errorf("%s: got %+v, want grade %s score %d", u.Email, r, u.Risk, band[u.Risk])
		}
	}

	t.Run("named users, any case, unknown ones left out, each once", func(t *testing.T) {
		a, b := users[2].Email, users[3].Email
		got, err := e.svc.FetchScores(ctx, "acme", []string{strings.ToUpper(a), " <" + b + "> ", "nobody@nowhere.test", a})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].UID != plugin.NormalizeEmail(a) || got[1].UID != plugin.NormalizeEmail(b) {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("mapping from the configuration", func(t *testing.T) {
		c := e.cfg
		c.Score = plugin.ScoreSettings{Mapping: map[string]int{"a": 1000, "B": 750, "C": 500, "D": 250, "F": 10}}
		if _, err := e.svc.UpdateConfiguration(ctx, "admin", "acme", c); err != nil {
			t.Fatal(err)
		}
		u := users[4]
		got := e.scores(e.svc, u.Email)[plugin.NormalizeEmail(u.Email)]
		want := map[string]int{"A": 1000, "B": 750, "C": 500, "D": 250, "F": 10}[u.Risk]
		if got.Score != want {
			t.Errorf("score = %d, want %d", got.Score, want)
		}
	})
	t.Run("unknown configuration", func(t *testing.T) {
		_, err := e.svc.FetchScores(ctx, "nope", nil)
		mustCode(t, err, plugin.ENOTFOUND)
	})
	st := e.waitSync(e.svc, "acme")
	if st.State != plugin.SyncOK || st.UnknownGrades != 1 || st.Users != len(users) || st.Scored != len(users)-1 {
		t.Errorf("status = %+v", st)
	}
}

func TestDuplicateAddressesKeepTheFirst(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 5})
	u := e.emu.Users()[0]
	other := "F"
	if u.Risk == "F" {
		other = "A"
	}
	// Mimecast listing one address twice (in another case, with another
	// grade) on the same page.
	e.mu.Lock()
	e.rewrite = func(path string, body []byte) []byte {
		if path != mimecasttest.PathSafeScoreDetails {
			return body
		}
		var env map[string]json.RawMessage
		if json.Unmarshal(body, &env) != nil {
			return body
		}
		var data []map[string]any
		if json.Unmarshal(env["data"], &data) != nil {
			return body
		}
		data = append(data, map[string]any{"emailAddress": strings.ToUpper(u.Email), "risk": other},
			map[string]any{"emailAddress": "", "risk": "A"})
		env["data"], _ = json.Marshal(data)
		out, _ := json.Marshal(env)
		return out
	}
	e.mu.Unlock()
	recs, err := e.svc.FetchRecords(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Errorf("records = %d, want 5", len(recs))
	}
	if got := e.scores(e.svc, u.Email)[plugin.NormalizeEmail(u.Email)]; got.Grade != u.Risk {
		t.Errorf("grade = %q, want the first entry's %q", got.Grade, u.Risk)
	}
}

// TestFailedSyncKeepsPreviousSnapshot interrupts a pull mid-way with
// emulator faults (beyond the client's retries) and checks that the
// previous snapshot is still served and the status says why.
func TestFailedSyncKeepsPreviousSnapshot(t *testing.T) {
	faults := []struct {
		name string
		f    mimecasttest.Faults
	}{
		{"truncated JSON", mimecasttest.Faults{Endpoint: mimecasttest.PathSafeScoreDetails, TruncateNext: 100}},
		{"5xx", mimecasttest.Faults{Endpoint: mimecasttest.PathSafeScoreDetails, FailNext: 100, ErrorStatus: 502}},
		{"aborted connection", mimecasttest.Faults{Endpoint: mimecasttest.PathSafeScoreDetails, AbortNext: 100}},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			e := newCoreEnv(t, mimecasttest.Options{Users: 50})
			ctx := context.Background()
			c := e.cfg
			c.Mimecast.PageSize = 10 // 5 pages
			if _, err := e.svc.UpdateConfiguration(ctx, "admin", "acme", c); err != nil {
				t.Fatal(err)
			}
			u := e.emu.Users()[7]
			before := e.scores(e.svc)
			if len(before) != 50 {
				t.Fatalf("first sync scored %d users, want 50", len(before))
			}
			newGrade := "A"
			if u.Risk == "A" {
				newGrade = "F"
			}
			e.emu.SetGrade(u.Email, newGrade)

			// Let the first two pages through, then break the rest.
			var pages atomic.Int32
			e.setBefore(func(r *http.Request) {
				if r.URL.Path == mimecasttest.PathSafeScoreDetails && pages.Add(1) == 3 {
					e.emu.SetFaults(tc.f)
				}
			})
			if err := e.svc.TriggerSync(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			st := e.waitSync(e.svc, "acme")
			if st.State != plugin.SyncFailed || st.Error == "" {
				t.Fatalf("status = %+v, want failed with an error", st)
			}
			if pages.Load() < 3 {
				t.Fatalf("the pull stopped before the fault (%d pages)", pages.Load())
			}
			after := e.scores(e.svc)
			if len(after) != 50 || after[plugin.NormalizeEmail(u.Email)].Grade != u.Risk {
				t.Errorf("after a failed sync: %d users, %s grade %q; want 50 and the old grade %q",
					len(after), u.Email, after[plugin.NormalizeEmail(u.Email)].Grade, u.Risk)
			}
			// A restart serves the stored (old) snapshot too.
			if got := e.scores(e.newService())[plugin.NormalizeEmail(u.Email)].Grade; got != u.Risk {
				t.Errorf("after restart grade = %q, want %q", got, u.Risk)
			}

			// Once Mimecast recovers, the next sync replaces the snapshot.
			e.setBefore(nil)
			e.emu.ClearFaults()
			if err := e.svc.TriggerSync(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			if st := e.waitSync(e.svc, "acme"); st.State != plugin.SyncOK {
				t.Fatalf("recovery sync: %+v", st)
			}
			if got := e.scores(e.svc)[plugin.NormalizeEmail(u.Email)].Grade; got != newGrade {
				t.Errorf("after recovery grade = %q, want %q", got, newGrade)
			}
		})
	}
}

func TestConcurrentFirstFetchSharesOnePull(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 120})
	c := e.cfg
	c.Mimecast.PageSize = 50 // 3 pages
	if _, err := e.svc.UpdateConfiguration(context.Background(), "admin", "acme", c); err != nil {
		t.Fatal(err)
	}
	e.emu.SetFaults(mimecasttest.Faults{Endpoint: mimecasttest.PathSafeScoreDetails, Latency: 30 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs, err := e.svc.FetchScores(context.Background(), "acme", nil)
			if err == nil && len(recs) != 120 {
				err = plugin.Errorf(plugin.EINTERNAL, "got %d records", len(recs))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := e.emu.Calls(mimecasttest.PathSafeScoreDetails), 3; got != want {
		t.Errorf("get-safe-score-details calls = %d, want %d (one pull of 3 pages)", got, want)
	}
	// Later calls and a restart are served from the snapshot.
	e.scores(e.svc)
	e.scores(e.newService())
	if got := e.emu.Calls(mimecasttest.PathSafeScoreDetails); got != 3 {
		t.Errorf("calls after cached fetches = %d, want 3", got)
	}
}

func TestTriggerSyncDoesNotStartASecondPull(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 20})
	e.emu.SetFaults(mimecasttest.Faults{Endpoint: mimecasttest.PathSafeScoreDetails, Latency: 50 * time.Millisecond})
	for i := 0; i < 5; i++ {
		if err := e.svc.TriggerSync(context.Background(), "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.waitSync(e.svc, "acme"); st.State != plugin.SyncOK {
		t.Fatalf("status %+v", st)
	}
	if got := e.emu.Calls(mimecasttest.PathSafeScoreDetails); got != 1 {
		t.Errorf("calls = %d, want 1", got)
	}
	mustCode(t, e.svc.TriggerSync(context.Background(), "nope"), plugin.ENOTFOUND)
	_, err := e.svc.SyncStatus(context.Background(), "nope")
	mustCode(t, err, plugin.ENOTFOUND)
}

func TestDeleteDropsTheSnapshot(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 10})
	ctx := context.Background()
	if len(e.scores(e.svc)) != 10 {
		t.Fatal("no scores")
	}
	if err := e.svc.DeleteConfiguration(ctx, "admin", "acme"); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.FetchScores(ctx, "acme", nil)
	mustCode(t, err, plugin.ENOTFOUND)
	mustCode(t, e.svc.DeleteConfiguration(ctx, "admin", "acme"), plugin.ENOTFOUND)
	// A new configuration of the same name starts from nothing: it pulls.
	e.emu.ResetStats()
	e.create("acme")
	if len(e.scores(e.svc)) != 10 || e.emu.Calls(mimecasttest.PathSafeScoreDetails) != 1 {
		t.Errorf("re-created configuration did not pull its own snapshot")
	}
}

func TestUpdateToAnotherTenantPullsAgain(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 10})
	ctx := context.Background()
	if len(e.scores(e.svc)) != 10 {
		t.Fatal("no scores")
	}
	svc := e.svc
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	other := mimecasttest.New(mimecasttest.Options{Users: 3, Seed: 9, Domain: "other.example"})
	srv := httptest.NewServer(other)
	t.Cleanup(srv.Close)
	c := e.cfg.Redacted()
	c.Mimecast.BaseURL = srv.URL
	// Keeping the stored secrets while moving the base URL would hand them
	// to the new host: refused, naming the field.
	if _, err := svc.UpdateConfiguration(ctx, "admin", "acme", c); plugin.ErrorCode(err) != plugin.EINVALID || !strings.Contains(err.Error(), "mimecast.") {
		t.Fatalf("moving the base URL with masked secrets: %v, want invalid", err)
	}
	c.Mimecast.AppKey, c.Mimecast.AccessKey, c.Mimecast.SecretKey = mimecasttest.DefaultAppKey, mimecasttest.DefaultAccessKey, mimecasttest.DefaultSecretKey
	if _, err := svc.UpdateConfiguration(ctx, "admin", "acme", c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if recs, err := svc.FetchRecords(ctx, "acme"); err == nil && len(recs) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new tenant's users never replaced the old snapshot")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestStartRunsLoopsAndCloseStopsThem(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 10})
	svc := e.newService()
	if svc.Ready() {
		t.Fatalf("ready before Start")
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !svc.Ready() {
		t.Fatalf("not ready after Start")
	}
	if st := e.waitSync(svc, "acme"); st.State != plugin.SyncOK && st.State != plugin.SyncIdle {
		t.Fatalf("status %+v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.emu.Calls(mimecasttest.PathSafeScoreDetails) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the loop never pulled")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// A configuration created while running gets its own loop.
	if _, err := svc.CreateConfiguration(context.Background(), "admin", plugin.Configuration{Name: "beta", Mimecast: e.settings()}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if svc.Ready() {
		t.Errorf("ready after Close")
	}
	mustCode(t, svc.TriggerSync(context.Background(), "acme"), plugin.EUNAVAILABLE)
}

func TestCreateChecksEventRulesWithTheDetector(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 5})
	svc := plugin.NewService(plugin.ServiceOptions{
		Store: e.st, Mimecast: mimecast.Factory(e.mcOpt), Actions: actions.New(actions.Options{Logger: zerolog.Nop()}),
		Detector: detect.New, Logger: zerolog.Nop(),
	})
	t.Cleanup(func() { svc.Close() })
	w := -5.0
	c := plugin.Configuration{Name: "ev", Mimecast: e.settings(), Events: &plugin.EventSettings{
		Enabled: true, Rules: map[string]plugin.RuleSettings{"no_such_rule": {Weight: &w}},
	}}
	_, err := svc.CreateConfiguration(context.Background(), "admin", c)
	mustCode(t, err, plugin.EINVALID)
	if f := fieldOf(err); !strings.HasPrefix(f, "events") {
		t.Errorf("field = %q, want an events field (%v)", f, err)
	}
	c.Events.Rules = nil
	if _, err := svc.CreateConfiguration(context.Background(), "admin", c); err != nil {
		t.Errorf("default rules refused: %v", err)
	}
}

func TestCloseCancelsAPullInFlight(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 10})
	svc := e.newService()
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The emulator only notices the client leaving once it reads the body,
	// after the delay; keep the delay short so its server closes soon.
	const slow = 2 * time.Second
	e.emu.SetFaults(mimecasttest.Faults{Endpoint: mimecasttest.PathSafeScoreDetails, SlowNext: 100, SlowBy: slow})
	started := make(chan struct{}, 1)
	e.setBefore(func(r *http.Request) {
		if r.URL.Path == mimecasttest.PathSafeScoreDetails {
			select {
			case started <- struct{}{}:
			default:
			}
		}
	})
	if err := svc.TriggerSync(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the pull never started")
	}
	start := time.Now()
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= slow/2 {
		t.Errorf("Close took %v with a pull in flight; want it to cancel the pull", d)
	}
	if _, err := e.st.Snapshot(context.Background(), "acme"); plugin.ErrorCode(err) != plugin.ENOTFOUND {
		t.Errorf("an interrupted pull wrote a snapshot: %v", err)
	}
}
