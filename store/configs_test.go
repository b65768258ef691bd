package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"mimecast-ure/plugin"
)

func TestConfigurationCRUD(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)

	_, err := s.Configuration(ctx, "acme")
	wantCode(t, err, plugin.ENOTFOUND)

	want := mustCreate(t, s, "acme")
	got, err := s.Configuration(ctx, "acme")
	if err != nil {
		t.Fatalf("Configuration: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Configuration round trip:\n got %+v\nwant %+v", got, want)
	}

	wantCode(t, s.CreateConfiguration(ctx, testConfig("acme")), plugin.ECONFLICT)
	wantCode(t, s.CreateConfiguration(ctx, plugin.Configuration{}), plugin.EINVALID)
	wantCode(t, s.UpdateConfiguration(ctx, testConfig("nope")), plugin.ENOTFOUND)

	want.Mimecast.AppKey = "NEWAPPKEY"
	want.Controls = nil
	want.UpdatedAt = time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)
	if err := s.UpdateConfiguration(ctx, want); err != nil {
		t.Fatalf("UpdateConfiguration: %v", err)
	}
	got, err = s.Configuration(ctx, "acme")
	if err != nil {
		t.Fatalf("Configuration: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after update:\n got %+v\nwant %+v", got, want)
	}

	mustCreate(t, s, "Zeta")
	mustCreate(t, s, "beta")
	all, err := s.Configurations(ctx)
	if err != nil {
		t.Fatalf("Configurations: %v", err)
	}
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	if want := []string{"Zeta", "acme", "beta"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Configurations names = %v, want %v", names, want)
	}
	if all[1].Mimecast.AppKey != "NEWAPPKEY" {
		t.Errorf("Configurations did not open secrets: app key %q", all[1].Mimecast.AppKey)
	}

	if err := s.DeleteConfiguration(ctx, "acme"); err != nil {
		t.Fatalf("DeleteConfiguration: %v", err)
	}
	wantCode(t, s.DeleteConfiguration(ctx, "acme"), plugin.ENOTFOUND)
	_, err = s.Configuration(ctx, "acme")
	wantCode(t, err, plugin.ENOTFOUND)
}

func TestDeleteConfigurationRemovesEverything(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	mustCreate(t, s, "other")
	now := clk.Now()
	for _, name := range []string{"acme", "other"} {
		if err := s.PutSnapshot(ctx, plugin.Snapshot{Configuration: name, TakenAt: now, Users: makeUsers(3)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSyncStatus(ctx, name, plugin.SyncStatus{State: "ok", Users: 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SaveLogPage(ctx, name, makeEvents(5, now), []plugin.Rejected{{Log: plugin.LogURL, Reason: "bad"}}, plugin.Checkpoint{Log: plugin.LogURL, Through: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkOnce(ctx, name, "k", now); err != nil {
			t.Fatal(err)
		}
		if err := s.PutState(ctx, name, "controls", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteConfiguration(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	// Recreating the name starts from nothing.
	mustCreate(t, s, "acme")
	if _, err := s.Snapshot(ctx, "acme"); plugin.ErrorCode(err) != plugin.ENOTFOUND {
		t.Errorf("Snapshot after delete: err %v, want not_found", err)
	}
	if st, err := s.SyncStatus(ctx, "acme"); err != nil || st.State != "idle" {
		t.Errorf("SyncStatus after delete = %+v, %v; want idle", st, err)
	}
	if ev, _, err := s.Events(ctx, "acme", plugin.EventFilter{}); err != nil || len(ev) != 0 {
		t.Errorf("Events after delete = %d, %v; want none", len(ev), err)
	}
	if cp, err := s.Checkpoint(ctx, "acme", plugin.LogURL); err != nil || !cp.Through.IsZero() {
		t.Errorf("Checkpoint after delete = %+v, %v", cp, err)
	}
	if r, err := s.Rejected(ctx, "acme", 0); err != nil || len(r) != 0 {
		t.Errorf("Rejected after delete = %v, %v", r, err)
	}
	if fresh, err := s.MarkOnce(ctx, "acme", "k", now); err != nil || !fresh {
		t.Errorf("MarkOnce after delete = %v, %v; want new", fresh, err)
	}
	if v, err := s.State(ctx, "acme", "controls"); err != nil || v != nil {
		t.Errorf("State after delete = %q, %v", v, err)
	}
	// The other configuration is untouched.
	if snap, err := s.Snapshot(ctx, "other"); err != nil || len(snap.Users) != 3 {
		t.Errorf("other snapshot = %d users, %v", len(snap.Users), err)
	}
	if ev, _, err := s.Events(ctx, "other", plugin.EventFilter{}); err != nil || len(ev) != 5 {
		t.Errorf("other events = %d, %v", len(ev), err)
	}
}

func TestWritesForMissingConfiguration(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	now := clk.Now()
	checks := map[string]error{
		"PutSnapshot":   s.PutSnapshot(ctx, plugin.Snapshot{Configuration: "gone", Users: makeUsers(1)}),
		"PutSyncStatus": s.PutSyncStatus(ctx, "gone", plugin.SyncStatus{}),
		"PutCheckpoint": s.PutCheckpoint(ctx, "gone", plugin.Checkpoint{Log: plugin.LogURL}),
		"PutState":      s.PutState(ctx, "gone", "k", []byte("v")),
	}
	_, checks["SaveLogPage"] = s.SaveLogPage(ctx, "gone", makeEvents(1, now), nil, plugin.Checkpoint{Log: plugin.LogURL})
	_, checks["MarkOnce"] = s.MarkOnce(ctx, "gone", "k", now)
	_, checks["SyncStatus"] = s.SyncStatus(ctx, "gone")
	_, _, checks["Events"] = s.Events(ctx, "gone", plugin.EventFilter{})
	_, checks["UserEvents"] = s.UserEvents(ctx, "gone", "a@b.c")
	_, checks["PruneEvents"] = s.PruneEvents(ctx, "gone", now)
	_, checks["Checkpoint"] = s.Checkpoint(ctx, "gone", plugin.LogURL)
	_, checks["Rejected"] = s.Rejected(ctx, "gone", 1)
	_, checks["State"] = s.State(ctx, "gone", "k")
	for name, err := range checks {
		t.Run(name, func(t *testing.T) { wantCode(t, err, plugin.ENOTFOUND) })
	}
}

func TestCancelledContext(t *testing.T) {
	s, _, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.CreateConfiguration(ctx, testConfig("acme")); err == nil {
		t.Errorf("CreateConfiguration with a cancelled context succeeded")
	}
	if _, err := s.Configurations(ctx); err == nil {
		t.Errorf("Configurations with a cancelled context succeeded")
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	if err := s.CreateToken(ctx, plugin.Token{ID: "t", Hash: "h"}); err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				evs := makeEvents(20, now.Add(time.Duration(g*10+i)*time.Hour))
				for j := range evs {
					evs[j].ID = fmt.Sprintf("g%d-%d-%d", g, i, j)
				}
				if _, err := s.SaveLogPage(ctx, "acme", evs, nil, plugin.Checkpoint{Log: plugin.LogURL}); err != nil {
					errs <- err
				}
				if err := s.TouchToken(ctx, "t", now.Add(time.Duration(i)*time.Minute)); err != nil {
					errs <- err
				}
				if _, _, err := s.Events(ctx, "acme", plugin.EventFilter{Limit: 5}); err != nil {
					errs <- err
				}
				if err := s.AppendAudit(ctx, plugin.AuditEntry{Actor: fmt.Sprint(g), Action: "x", At: now}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if r, err := s.VerifyAudit(ctx); err != nil || !r.OK || r.Entries != 40 {
		t.Errorf("VerifyAudit after concurrent appends = %+v, %v", r, err)
	}
	if evs, _, _ := s.Events(ctx, "acme", plugin.EventFilter{Limit: 1000}); len(evs) != 800 {
		t.Errorf("%d events after concurrent saves, want 800", len(evs))
	}
}

func TestFilePathAndReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if got, want := FilePath(dir), filepath.Join(dir, FileName); got != want {
		t.Errorf("FilePath = %q, want %q", got, want)
	}
	if _, err := Open(FilePath(dir), Options{ReadOnly: true}); err == nil {
		t.Errorf("read-only Open of a missing file succeeded")
	}
	s := mustOpen(t, FilePath(dir), testKey(1), nil)
	mustCreate(t, s, "acme")
	s.Close()
	ro, err := Open(FilePath(dir), Options{ReadOnly: true, MasterKey: testKey(1)})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	defer ro.Close()
	if c, err := ro.Configuration(ctx, "acme"); err != nil || c.Mimecast.AppKey == "" {
		t.Errorf("read-only Configuration = %v", err)
	}
	if err := ro.AppendAudit(ctx, plugin.AuditEntry{Actor: "x"}); err == nil {
		t.Errorf("read-only AppendAudit succeeded")
	}
	// A second writer waits for the lock, then gives up with a clear error.
	s2 := mustOpen(t, filepath.Join(dir, "other.db"), testKey(1), nil)
	_, err = Open(s2.Path(), Options{Timeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("second Open of a locked file: err = %v, want a lock error", err)
	}
}
