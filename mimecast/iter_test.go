package mimecast_test

import (
	"context"
	"net/http"
	"testing"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

func TestGradePagesIterator(t *testing.T) {
	rec := &recorder{reply: func(n int, w http.ResponseWriter, r *sentRequest) {
		if pageToken(r) == "" {
			writeJSON(w, 200, mustSample(t, "get-safe-score-details-page1.json"))
			return
		}
		writeJSON(w, 200, mustSample(t, "get-safe-score-details-last-page.json"))
	}}
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, nil)
	users := 0
	for page, err := range c.GradePages(context.Background(), 4) {
		if err != nil {
			t.Fatalf("GradePages: %v", err)
		}
		users += len(page)
	}
	if users != 6 {
		t.Errorf("got %d users, want 6", users)
	}
	// Breaking early stops the pull after the first page.
	before := len(rec.Requests())
	for range c.GradePages(context.Background(), 4) {
		break
	}
	if got := len(rec.Requests()) - before; got != 1 {
		t.Errorf("got %d calls after break, want 1", got)
	}
}

func TestLogPagesIteratorYieldsError(t *testing.T) {
	rec := scripted(t, status(403, `{"meta":{"status":403},"fail":[]}`))
	srv := newServer(t, rec)
	c, _ := newClient(t, srv.URL, nil)
	var errs []error
	for _, err := range c.LogPages(context.Background(), plugin.LogDLP, plugin.LogQuery{}) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || plugin.ErrorCode(errs[0]) != plugin.EUPSTREAMAUTH {
		t.Errorf("got %v, want one upstream_auth error", errs)
	}
	_ = mimecast.PathDLPLogs
}
