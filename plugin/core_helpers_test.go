package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/actions"
	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

// coreEnv is a Service wired to a real store in a temp dir and the
// Mimecast emulator through the real client, with one configuration
// ("acme") pointing at the emulator.
type coreEnv struct {
	tb    testing.TB
	emu   *mimecasttest.Server
	srv   *httptest.Server
	st    *store.Store
	svc   *plugin.Service
	cfg   plugin.Configuration
	mcOpt mimecast.Options

	mu      sync.Mutex
	before  func(r *http.Request)                 // runs before the emulator sees a request
	rewrite func(path string, body []byte) []byte // edits the emulator's reply
}

// coreMasterKey is a fixed test master key.
var coreMasterKey = bytes.Repeat([]byte{0x42}, 32)

func newCoreEnv(tb testing.TB, eo mimecasttest.Options) *coreEnv {
	tb.Helper()
	e := &coreEnv{tb: tb, emu: mimecasttest.New(eo)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		f, rw := e.before, e.rewrite
		e.mu.Unlock()
		if f != nil {
			f(r)
		}
		if rw == nil {
			e.emu.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		e.emu.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		body := rw(r.URL.Path, rec.Body.Bytes())
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	tb.Cleanup(e.srv.Close)
	st, err := store.Open(filepath.Join(tb.TempDir(), "ure.db"), store.Options{MasterKey: coreMasterKey, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	e.st = st
	e.mcOpt = mimecast.Options{
		MaxAttempts: 3,
		Sleep: func(ctx context.Context, d time.Duration) error {
			return ctx.Err()
		},
		Jitter: func(time.Duration) time.Duration { return 0 },
	}
	e.svc = e.newService()
	e.cfg = e.create("acme")
	return e
}

// newService builds another Service on the same store and emulator (a
// "restart").
func (e *coreEnv) newService() *plugin.Service {
	svc := plugin.NewService(plugin.ServiceOptions{
		Store:    e.st,
		Mimecast: mimecast.Factory(e.mcOpt),
		Actions:  actions.New(actions.Options{Logger: zerolog.Nop()}),
		Logger:   zerolog.Nop(),
	})
	e.tb.Cleanup(func() { svc.Close() })
	return svc
}

func (e *coreEnv) settings() plugin.MimecastSettings {
	return plugin.MimecastSettings{
		BaseURL:   e.srv.URL,
		Auth:      plugin.AuthLegacy,
		AppID:     mimecasttest.DefaultAppID,
		AppKey:    mimecasttest.DefaultAppKey,
		AccessKey: mimecasttest.DefaultAccessKey,
		SecretKey: mimecasttest.DefaultSecretKey,
	}
}

func (e *coreEnv) create(name string) plugin.Configuration {
	e.tb.Helper()
	c, err := e.svc.CreateConfiguration(context.Background(), "admin", plugin.Configuration{Name: name, Mimecast: e.settings()})
	if err != nil {
		e.tb.Fatalf("CreateConfiguration(%s): %v", name, err)
	}
	return c
}

// setBefore installs a hook run before each emulator request.
func (e *coreEnv) setBefore(f func(r *http.Request)) {
	e.mu.Lock()
	e.before = f
	e.mu.Unlock()
}

// waitSync polls the sync status until no pull is running.
func (e *coreEnv) waitSync(svc *plugin.Service, name string) plugin.SyncStatus {
	e.tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := svc.SyncStatus(context.Background(), name)
		if err != nil {
			e.tb.Fatalf("SyncStatus: %v", err)
		}
		if st.State != plugin.SyncRunning {
			return st
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("sync of %s still running after 20s", name)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// scores returns FetchScores for all users as uid -> record.
func (e *coreEnv) scores(svc *plugin.Service, uids ...string) map[string]plugin.ScoredRecord {
	e.tb.Helper()
	recs, err := svc.FetchScores(context.Background(), "acme", uids)
	if err != nil {
		e.tb.Fatalf("FetchScores: %v", err)
	}
	out := make(map[string]plugin.ScoredRecord, len(recs))
	for _, r := range recs {
		out[r.UID] = r
	}
	return out
}

func mustCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := plugin.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func asError(err error, target **plugin.Error) bool { return errors.As(err, target) }

func fieldOf(err error) string {
	var pe *plugin.Error
	if errors.As(err, &pe) {
		return pe.Field
	}
	return ""
}
