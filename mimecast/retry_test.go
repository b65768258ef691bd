package mimecast_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// countingObserver records what the client reports.
type countingObserver struct {
	mu        sync.Mutex
	statuses  []int
	endpoints []string
	waits     []time.Duration
}

func (o *countingObserver) Call(endpoint string, status int, d time.Duration) {
	o.mu.Lock()
	o.statuses = append(o.statuses, status)
	o.endpoints = append(o.endpoints, endpoint)
	o.mu.Unlock()
}

// count returns the attempts made on endpoint.
func (o *countingObserver) count(endpoint string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, e := range o.endpoints {
		if e == endpoint {
			n++
		}
	}
	return n
}

func (o *countingObserver) RateLimitWait(endpoint string, d time.Duration) {
	o.mu.Lock()
	o.waits = append(o.waits, d)
	o.mu.Unlock()
}

var accountOK = []byte(`{"meta":{"status":200},"data":[{"accountCode":"C1","packages":["Awareness Training [1078]"]}],"fail":[]}`)

// scripted serves replies in order; the last one repeats.
func scripted(t *testing.T, replies ...func(w http.ResponseWriter)) *recorder {
	return &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		replies[min(n, len(replies)-1)](w)
	}}
}

func status(code int, body string, headers ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { writeJSON(w, code, []byte(body), headers...) }
}

func ok(w http.ResponseWriter) { writeJSON(w, 200, accountOK) }

func TestRateLimit429Waits(t *testing.T) {
	tests := []struct {
		name     string
		headers  []string
		wantWait time.Duration
	}{
		{"reset in ms", []string{"X-RateLimit-Reset", "2500", "X-RateLimit-Remaining", "0", "X-RateLimit-Limit", "100"}, 2500 * time.Millisecond},
		{"reset below floor", []string{"X-RateLimit-Reset", "200"}, time.Second},
		{"no headers", nil, time.Second},
		{"retry-after seconds", []string{"Retry-After", "7"}, 7 * time.Second},
		{"larger of reset and retry-after", []string{"Retry-After", "2", "X-RateLimit-Reset", "4000"}, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := scripted(t, status(429, `{"meta":{"status":429},"data":[],"fail":[]}`, tt.headers...), ok)
			srv := newServer(t, rec)
			obs := &countingObserver{}
			c, clk := newClient(t, srv.URL, func(o *mimecast.Options) { o.Observer = obs })
			rec.clock = clk
			if _, err := c.Account(context.Background()); err != nil {
				t.Fatalf("Account: %v", err)
			}
			if got := clk.Sleeps(); !reflect.DeepEqual(got, []time.Duration{tt.wantWait}) {
				t.Errorf("sleeps: got %v, want [%v]", got, tt.wantWait)
			}
			reqs := rec.Requests()
			if len(reqs) != 2 {
				t.Fatalf("got %d calls, want 2", len(reqs))
			}
			if gap := reqs[1].At.Sub(reqs[0].At); gap < tt.wantWait {
				t.Errorf("second call %v after the 429, want at least %v", gap, tt.wantWait)
			}
			if !reflect.DeepEqual(obs.statuses, []int{429, 200}) || !reflect.DeepEqual(obs.waits, []time.Duration{tt.wantWait}) {
				t.Errorf("observer: statuses %v waits %v", obs.statuses, obs.waits)
			}
		})
	}
}

func TestRateLimitJitterAddsToWait(t *testing.T) {
	rec := scripted(t, status(429, `{}`, "X-RateLimit-Reset", "2000"), ok)
	srv := newServer(t, rec)
	var asked []time.Duration
	c, clk := newClient(t, srv.URL, func(o *mimecast.Options) {
		o.Jitter = func(max time.Duration) time.Duration { asked = append(asked, max); return max / 2 }
	})
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("Account: %v", err)
	}
	if got, want := clk.Sleeps(), []time.Duration{2250 * time.Millisecond}; !reflect.DeepEqual(got, want) {
		t.Errorf("got sleeps %v, want %v (jitter of at most a quarter, capped 1s)", got, want)
	}
	if !reflect.DeepEqual(asked, []time.Duration{500 * time.Millisecond}) {
		t.Errorf("jitter asked for %v", asked)
	}
}

func TestRemainingZeroDelaysEveryGoroutine(t *testing.T) {
	rec := scripted(t, status(200, string(accountOK), "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "4000"), ok)
	srv := newServer(t, rec)
	c, clk := newClient(t, srv.URL, nil)
	rec.clock = clk
	t0 := clk.Now()
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("Account: %v", err)
	}
	if len(clk.Sleeps()) != 0 {
		t.Fatalf("the first call waited: %v", clk.Sleeps())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Account(context.Background()); err != nil {
				t.Errorf("Account: %v", err)
			}
		}()
	}
	wg.Wait()
	reqs := rec.Requests()
	if len(reqs) != 9 {
		t.Fatalf("got %d calls, want 9", len(reqs))
	}
	for i, r := range reqs[1:] {
		if r.At.Before(t0.Add(4 * time.Second)) {
			t.Errorf("call %d went out %v after the Remaining=0 answer, want at least 4s", i+2, r.At.Sub(t0))
		}
	}
}

func TestRateLimitLongerThanMaxWaitFailsAtOnce(t *testing.T) {
	rec := scripted(t, status(429, `{}`, "X-RateLimit-Reset", "600000"))
	srv := newServer(t, rec)
	c, clk := newClient(t, srv.URL, func(o *mimecast.Options) { o.MaxWait = 5 * time.Minute })
	_, err := c.Account(context.Background())
	var ae *mimecast.APIError
	if !errors.As(err, &ae) || ae.Kind != mimecast.KindRateLimited || ae.Wait != 10*time.Minute {
		t.Fatalf("got %v, want rate limited with a 10m wait", err)
	}
	if plugin.ErrorCode(err) != plugin.ERATELIMITED || !strings.Contains(plugin.ErrorMessage(err), "retry in 10m0s") {
		t.Errorf("plugin error: %s %q", plugin.ErrorCode(err), plugin.ErrorMessage(err))
	}
	if len(clk.Sleeps()) != 0 || len(rec.Requests()) != 1 {
		t.Errorf("slept %v over %d calls, want no sleep and 1 call", clk.Sleeps(), len(rec.Requests()))
	}
	// The next call must not go out before the reset either.
	clk.Advance(time.Minute)
	_, err = c.FindGroups(context.Background(), "")
	if !errors.As(err, &ae) || ae.Kind != mimecast.KindRateLimited || ae.Wait != 9*time.Minute {
		t.Errorf("got %v, want rate limited with 9m left", err)
	}
	if len(rec.Requests()) != 1 {
		t.Errorf("got %d calls, want none before the reset", len(rec.Requests()))
	}
}

func TestRateLimitAttemptsBounded(t *testing.T) {
	rec := scripted(t, status(429, `{}`, "X-RateLimit-Reset", "1500"))
	srv := newServer(t, rec)
	c, clk := newClient(t, srv.URL, func(o *mimecast.Options) { o.MaxAttempts = 3 })
	_, err := c.Account(context.Background())
	if plugin.ErrorCode(err) != plugin.ERATELIMITED || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("got %v, want rate limited after 3 attempts", err)
	}
	if len(rec.Requests()) != 3 || len(clk.Sleeps()) != 2 {
		t.Errorf("got %d calls and sleeps %v, want 3 calls and 2 waits", len(rec.Requests()), clk.Sleeps())
	}
}

func TestServerErrorRetriedWithBackoff(t *testing.T) {
	rec := scripted(t, status(500, `oops`), status(502, `{}`), status(503, `{}`), ok)
	srv := newServer(t, rec)
	c, clk := newClient(t, srv.URL, nil)
	a, err := c.Account(context.Background())
	if err != nil || a.Code != "C1" {
		t.Fatalf("got %+v %v, want success after three 5xx", a, err)
	}
	if got, want := clk.Sleeps(), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !reflect.DeepEqual(got, want) {
		t.Errorf("backoff: got %v, want %v", got, want)
	}
}

func TestServerErrorGivesUpAfterMaxAttempts(t *testing.T) {
	rec := scripted(t, status(503, `{"meta":{"status":503},"fail":[{"errors":[{"code":"err_down","message":"Down for maintenance"}]}]}`))
	srv := newServer(t, rec)
	c, clk := newClient(t, srv.URL, func(o *mimecast.Options) { o.MaxWait = 3 * time.Second })
	_, err := c.Account(context.Background())
	var ae *mimecast.APIError
	if !errors.As(err, &ae) || ae.Kind != mimecast.KindUnavailable || ae.Attempts != 5 || ae.Status != 503 {
		t.Fatalf("got %v, want unavailable 503 after 5 attempts", err)
	}
	if !strings.Contains(err.Error(), "5 attempts") || !strings.Contains(plugin.ErrorMessage(err), "5 attempts") {
		t.Errorf("error %q / message %q do not count attempts", err, plugin.ErrorMessage(err))
	}
	if got, want := clk.Sleeps(), []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}; !reflect.DeepEqual(got, want) {
		t.Errorf("backoff capped by MaxWait: got %v, want %v", got, want)
	}
}

func TestTimeoutRetriedThenClearError(t *testing.T) {
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		time.Sleep(300 * time.Millisecond) // slower than the 50ms timeout
		writeJSON(w, 200, accountOK)
	}}
	srv := newServer(t, rec)
	obs := &countingObserver{}
	c, clk := newClient(t, srv.URL, func(o *mimecast.Options) { o.Timeout = 50 * time.Millisecond; o.MaxAttempts = 3; o.Observer = obs })
	_, err := c.Account(context.Background())
	var ae *mimecast.APIError
	if !errors.As(err, &ae) || ae.Kind != mimecast.KindUnavailable || ae.Attempts != 3 {
		t.Fatalf("got %v, want unavailable after 3 attempts", err)
	}
	if !strings.Contains(err.Error(), "did not answer within 50ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %q, want a clear timeout error", err)
	}
	if plugin.ErrorCode(err) != plugin.EUNAVAILABLE {
		t.Errorf("code: got %s", plugin.ErrorCode(err))
	}
	if len(clk.Sleeps()) != 2 || !reflect.DeepEqual(obs.statuses, []int{0, 0, 0}) {
		t.Errorf("sleeps %v, observed statuses %v", clk.Sleeps(), obs.statuses)
	}
}

func TestTimeoutThenSuccess(t *testing.T) {
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		if n == 0 {
			time.Sleep(300 * time.Millisecond)
		}
		writeJSON(w, 200, accountOK)
	}}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.Timeout = 100 * time.Millisecond })
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("got %v, want success on the second attempt", err)
	}
}

func TestBrokenJSON(t *testing.T) {
	for _, body := range []string{
		`{"meta":{"status":200},"data":[{"emailAddress":"a@x","ri`,
		`<html>Service Unavailable</html>`,
		``,
	} {
		t.Run(body, func(t *testing.T) {
			rec := scripted(t, status(200, body))
			srv := newServer(t, rec)
			c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.MaxAttempts = 2 })
			err := c.EachGradePage(context.Background(), 10, func([]plugin.UserGrade) error { return nil })
			var ae *mimecast.APIError
			if !errors.As(err, &ae) || ae.Kind != mimecast.KindUnavailable {
				t.Fatalf("got %v, want unavailable", err)
			}
			if !strings.Contains(plugin.ErrorMessage(err), "the Mimecast response was not valid JSON") || plugin.ErrorCode(err) != plugin.EUNAVAILABLE {
				t.Errorf("got %s %q", plugin.ErrorCode(err), plugin.ErrorMessage(err))
			}
			if len(rec.Requests()) != 2 {
				t.Errorf("got %d calls, want 2 (a broken read is retried)", len(rec.Requests()))
			}
		})
	}
}

func TestFinalErrors(t *testing.T) {
	tests := []struct {
		name       string
		reply      func(w http.ResponseWriter)
		wantKind   mimecast.Kind
		wantCode   string
		wantInMsg  string
		wantField  string
		wantStatus int
	}{
		{"401 invalid signature", status(401, string(mustSample(t, "error-401-invalid-signature.json"))),
			mimecast.KindInvalidCredentials, plugin.EUPSTREAMAUTH,
			"Mimecast rejected the credentials (invalid signature): check the application id, application key, access key and secret key", "", 401},
		{"401 skewed date", status(401, `Date Header Too Skewed`),
			mimecast.KindInvalidCredentials, plugin.EUPSTREAMAUTH, "check this server's clock", "", 401},
		{"418 binding expired", status(418, string(mustSample(t, "error-418-binding-expired.json"))),
			mimecast.KindBindingExpired, plugin.EUPSTREAMAUTH,
			"the access/secret key binding has expired (HTTP 418): create new access and secret keys", "", 418},
		{"binding expired code on 200", status(200, `{"meta":{"status":200},"data":[],"fail":[{"errors":[{"code":"err_xdk_binding_expired","message":"x"}]}]}`),
			mimecast.KindBindingExpired, plugin.EUPSTREAMAUTH, "create new access and secret keys", "", 200},
		{"403", status(403, `{"meta":{"status":403},"fail":[{"errors":[{"code":"err_xdk_forbidden","message":"Forbidden"}]}]}`),
			mimecast.KindForbidden, plugin.EUPSTREAMAUTH, "lacks the permission", "", 403},
		{"meta.status 403 on HTTP 200", status(200, `{"meta":{"status":403},"data":[],"fail":[]}`),
			mimecast.KindForbidden, plugin.EUPSTREAMAUTH, "lacks the permission", "", 200},
		{"404", status(404, `not here`), mimecast.KindNotFound, plugin.ENOTFOUND, "not found", "", 404},
		{"validation", status(200, string(mustSample(t, "error-validation-blank.json"))),
			mimecast.KindValidation, plugin.EINVALID, "cannot be blank", "query", 200},
		{"400 other", status(400, `{"meta":{"status":400},"fail":[{"errors":[{"code":"err_bad","message":"Bad request"}]}]}`),
			mimecast.KindRejected, plugin.EUNAVAILABLE, "Bad request", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := scripted(t, tt.reply)
			srv := newServer(t, rec)
			c, clk := newClient(t, srv.URL, nil)
			_, err := c.Account(context.Background())
			var ae *mimecast.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want an *APIError", err)
			}
			if ae.Kind != tt.wantKind || ae.Status != tt.wantStatus || ae.Field != tt.wantField {
				t.Errorf("got kind %s status %d field %q, want %s %d %q", ae.Kind, ae.Status, ae.Field, tt.wantKind, tt.wantStatus, tt.wantField)
			}
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Code != tt.wantCode || !strings.Contains(pe.Message, tt.wantInMsg) {
				t.Errorf("got plugin error %+v, want code %s with %q", pe, tt.wantCode, tt.wantInMsg)
			}
			// A skewed date is re-signed once with a fresh date, then final.
			wantCalls := 1
			if strings.Contains(tt.name, "skewed") {
				wantCalls = 2
			}
			if len(rec.Requests()) != wantCalls || len(clk.Sleeps()) != 0 {
				t.Errorf("got %d calls and sleeps %v, want %d call(s), no wait", len(rec.Requests()), clk.Sleeps(), wantCalls)
			}
			if reqs := rec.Requests(); wantCalls == 2 && reqs[0].Header.Get("x-mc-req-id") == reqs[1].Header.Get("x-mc-req-id") {
				t.Error("the re-signed attempt reused the request id")
			}
		})
	}
}

func TestCreateGroupRetriedOnlyWhenSurelyNotRun(t *testing.T) {
	t.Run("500 not retried", func(t *testing.T) {
		rec := scripted(t, status(500, `{}`))
		srv := newServer(t, rec)
		c, _ := newClient(t, srv.URL, nil)
		if _, err := c.CreateGroup(context.Background(), "g"); plugin.ErrorCode(err) != plugin.EUNAVAILABLE {
			t.Fatalf("got %v, want unavailable", err)
		}
		if n := len(rec.Requests()); n != 1 {
			t.Errorf("got %d calls, want 1: a create may have run", n)
		}
	})
	t.Run("429 retried", func(t *testing.T) {
		rec := scripted(t, status(429, `{}`, "X-RateLimit-Reset", "1000"), status(200, string(mustSample(t, "create-group.json"))))
		srv := newServer(t, rec)
		c, _ := newClient(t, srv.URL, nil)
		if _, err := c.CreateGroup(context.Background(), "g"); err != nil {
			t.Fatalf("CreateGroup: %v", err)
		}
		if n := len(rec.Requests()); n != 2 {
			t.Errorf("got %d calls, want 2", n)
		}
	})
}

func TestConnectionRefusedRetried(t *testing.T) {
	srv := newServer(t, http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	obs := &countingObserver{}
	c, clk := newClient(t, url, func(o *mimecast.Options) { o.MaxAttempts = 3; o.Observer = obs })
	_, err := c.CreateGroup(context.Background(), "g")
	if plugin.ErrorCode(err) != plugin.EUNAVAILABLE || !strings.Contains(err.Error(), "could not connect") || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("got %v", err)
	}
	if !reflect.DeepEqual(obs.statuses, []int{0, 0, 0}) || len(clk.Sleeps()) != 2 {
		t.Errorf("observed %v, sleeps %v", obs.statuses, clk.Sleeps())
	}
}

func TestContextCancelled(t *testing.T) {
	rec := scripted(t, ok)
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Account(ctx)
	if !errors.Is(err, context.Canceled) || len(rec.Requests()) != 0 {
		t.Errorf("got %v after %d calls, want context.Canceled and no call", err, len(rec.Requests()))
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	rec := scripted(t, status(503, `{}`))
	srv := newServer(t, rec)
	ctx, cancel := context.WithCancel(context.Background())
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) {
		o.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	})
	_, err := c.Account(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "HTTP 503") || len(rec.Requests()) != 1 {
		t.Errorf("got %v after %d calls", err, len(rec.Requests()))
	}
}

func TestEveryRequestFreshlySigned(t *testing.T) {
	rec := scripted(t,
		status(503, `{}`),
		status(200, string(mustSample(t, "get-safe-score-details-page1.json"))),
		status(429, `{}`, "X-RateLimit-Reset", "1000"),
		status(200, string(mustSample(t, "get-safe-score-details-last-page.json"))),
	)
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, nil)
	if err := c.EachGradePage(context.Background(), 4, func([]plugin.UserGrade) error { return nil }); err != nil {
		t.Fatalf("EachGradePage: %v", err)
	}
	reqs := rec.Requests()
	if len(reqs) != 4 {
		t.Fatalf("got %d calls, want 4", len(reqs))
	}
	ids, sigs, dates := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, r := range reqs {
		if !r.SigOK {
			t.Errorf("call %d: signature does not verify", i+1)
		}
		ids[r.Header.Get("x-mc-req-id")] = true
		sigs[r.Header.Get("Authorization")] = true
		dates[r.Header.Get("x-mc-date")] = true
	}
	if len(ids) != 4 || len(sigs) != 4 {
		t.Errorf("got %d request ids and %d signatures over 4 calls, want all distinct", len(ids), len(sigs))
	}
	if len(dates) != 3 { // the fake clock moves only while waiting: 0s, +1s, +1s, +1s (429 reset)
		t.Errorf("got %d distinct dates, want 3 (a new date after each wait)", len(dates))
	}
}

func TestNewValidates(t *testing.T) {
	base := mimecast.Options{BaseURL: "https://us-api.mimecast.com", AppID: "a", AppKey: "k", AccessKey: "ak", SecretKey: testSecretKey}
	tests := []struct {
		name      string
		mutate    func(*mimecast.Options)
		wantField string
	}{
		{"ok", func(*mimecast.Options) {}, ""},
		{"bad url", func(o *mimecast.Options) { o.BaseURL = "us-api.mimecast.com" }, "base_url"},
		{"no app key", func(o *mimecast.Options) { o.AppKey = " " }, "app_key"},
		{"secret not base64", func(o *mimecast.Options) { o.SecretKey = "not-base64!!" }, "secret_key"},
		{"bad auth", func(o *mimecast.Options) { o.Auth = "basic" }, "auth"},
		{"oauth no secret", func(o *mimecast.Options) { o.Auth = "oauth2"; o.ClientID = "id" }, "client_secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.mutate(&o)
			_, err := mimecast.New(o)
			var pe *plugin.Error
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.As(err, &pe) || pe.Code != plugin.EINVALID || pe.Field != tt.wantField {
				t.Errorf("got %v, want invalid %s", err, tt.wantField)
			}
			if strings.Contains(err.Error(), "not-base64!!") {
				t.Errorf("error quotes the secret")
			}
		})
	}
}

func TestNewFromSettingsAndClamps(t *testing.T) {
	c, err := mimecast.NewFromSettings(plugin.MimecastSettings{
		BaseURL: "https://eu-api.mimecast.com/", Auth: "legacy", AppID: "a", AppKey: "k", AccessKey: "ak",
		SecretKey: " " + testSecretKey + " ", PageSize: 9000, BatchSize: 0,
	}, mimecast.Options{})
	if err != nil {
		t.Fatalf("NewFromSettings: %v", err)
	}
	if c.PageSize() != 500 || c.BatchSize() != 10 {
		t.Errorf("got page %d batch %d, want 500 and 10", c.PageSize(), c.BatchSize())
	}
	var m plugin.Mimecast
	if m, err = mimecast.Factory(mimecast.Options{})(plugin.MimecastSettings{BaseURL: "https://x", Auth: "oauth2", ClientID: "i", ClientSecret: "s"}); err != nil || m == nil {
		t.Errorf("Factory: %v", err)
	}
}

func TestGateDoesNotSpinWithAFrozenClock(t *testing.T) {
	rec := scripted(t, status(429, `{}`, "X-RateLimit-Reset", "3000"), ok)
	srv := newServer(t, rec)
	var slept []time.Duration
	c, _ := newClient(t, srv.URL, func(o *mimecast.Options) {
		frozen := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		o.Now = func() time.Time { return frozen }
		o.Sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	})
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("Account: %v", err)
	}
	if !reflect.DeepEqual(slept, []time.Duration{3 * time.Second}) || len(rec.Requests()) != 2 {
		t.Errorf("got sleeps %v over %d calls, want one 3s wait and 2 calls", slept, len(rec.Requests()))
	}
}

func TestDefaultSleepAndJitter(t *testing.T) {
	rec := scripted(t, status(503, `{}`), status(503, `{}`), ok)
	srv := newServer(t, rec)
	c, err := mimecast.New(mimecast.Options{BaseURL: srv.URL, AppID: testAppID, AppKey: testAppKey, AccessKey: testAccessKey,
		SecretKey: testSecretKey, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Account(context.Background()); err != nil {
		t.Fatalf("Account: %v", err)
	}
	if d := time.Since(start); d < 3*time.Millisecond {
		t.Errorf("took %v, want the real backoff of at least 1ms+2ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	srv2 := newServer(t, scripted(t, status(503, `{}`)))
	c2, _ := mimecast.New(mimecast.Options{BaseURL: srv2.URL, AppID: testAppID, AppKey: testAppKey, AccessKey: testAccessKey,
		SecretKey: testSecretKey, Backoff: time.Hour, MaxWait: time.Hour})
	if _, err := c2.Account(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the context's deadline to end the backoff", err)
	}
}

// A function-level failure inside an HTTP 200 (meta.status 500, or an
// error Mimecast marks retryable) may mean the function ran: create-group
// is not repeated, a read is.
func TestEnvelopeFailureRetriedOnlyWhenSafe(t *testing.T) {
	bodies := map[string]string{
		"meta status 500":   `{"meta":{"status":500},"data":[],"fail":[{"errors":[{"code":"err_internal","message":"boom","retryable":false}]}]}`,
		"retryable failure": `{"meta":{"status":200},"data":[],"fail":[{"errors":[{"code":"err_something","message":"try again","retryable":true}]}]}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			calls := map[string]int{}
			srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				calls[r.URL.Path]++
				mu.Unlock()
				writeJSON(w, 200, []byte(body))
			}))
			c, _ := newClient(t, srv.URL, func(o *mimecast.Options) { o.MaxAttempts = 3 })
			if _, err := c.CreateGroup(context.Background(), "Risky"); err == nil {
				t.Fatal("CreateGroup succeeded on a failed envelope")
			}
			if _, err := c.Account(context.Background()); err == nil {
				t.Fatal("Account succeeded on a failed envelope")
			}
			mu.Lock()
			defer mu.Unlock()
			if got := calls[mimecast.PathCreateGroup]; got != 1 {
				t.Errorf("create-group sent %d times, want 1", got)
			}
			if got := calls[mimecast.PathGetAccount]; got != 3 {
				t.Errorf("get-account sent %d times, want 3 (retried)", got)
			}
		})
	}
}
