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

func TestOutboundClientRefusesRedirectsAndLinkLocal(t *testing.T) {
	hits := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	c := outboundClient(2 * time.Second)
	res, err := c.Post(redir.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || hits != 0 {
		t.Errorf("redirect: status %d, target hit %d times; want the 307 returned and no hit", res.StatusCode, hits)
	}
	for _, addr := range []string{"169.254.169.254:80", "[fe80::1]:80", "0.0.0.0:80", "224.0.0.1:80"} {
		if err := refuseSpecialAddress("tcp", addr, nil); err == nil {
			t.Errorf("dialling %s was allowed", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:80", "10.1.2.3:443", "[::1]:80", "93.184.216.34:443"} {
		if err := refuseSpecialAddress("tcp", addr, nil); err != nil {
			t.Errorf("dialling %s refused: %v", addr, err)
		}
	}
}
