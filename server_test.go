package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestInflightWaitsForRequests(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	f := &inflight{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	})}
	if !f.wait(context.Background()) {
		t.Fatal("wait with nothing in flight did not return true")
	}
	done := make(chan struct{})
	go func() {
		f.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		close(done)
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if f.wait(ctx) {
		t.Fatal("wait returned true while a request was running")
	}
	close(release)
	<-done
	if !f.wait(context.Background()) {
		t.Fatal("wait after the request finished did not return true")
	}
}
