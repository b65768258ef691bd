package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"mimecast-ure/plugin"
)

func makeUsers(n int) []plugin.UserGrade {
	grades := []string{"A", "B", "C", "D", "F", "", "b "}
	us := make([]plugin.UserGrade, n)
	for i := range us {
		us[i] = plugin.UserGrade{
			Email: fmt.Sprintf("user%06d@acme.example.com", i), Name: fmt.Sprintf("User Number %d", i),
			Department: "Finance", Risk: grades[i%len(grades)], HumanError: "C", Sentiment: "B",
			Engagement: "A", Knowledge: "D", UserState: "active",
		}
	}
	return us
}

func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	if _, err := s.Snapshot(ctx, "acme"); plugin.ErrorCode(err) != plugin.ENOTFOUND {
		t.Fatalf("Snapshot before any: err = %v, want not_found", err)
	}
	for _, n := range []int{0, 1, chunkUsers - 1, chunkUsers, chunkUsers + 1, 2500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			want := plugin.Snapshot{Configuration: "acme", TakenAt: clk.Now().Add(time.Duration(n)), Users: makeUsers(n)}
			want.Users = append(want.Users[:0:0], want.Users...)
			if n > 0 {
				want.Users[0].Name = "Ünïcødé \x00 name"
			}
			if err := s.PutSnapshot(ctx, want); err != nil {
				t.Fatalf("PutSnapshot: %v", err)
			}
			got, err := s.Snapshot(ctx, "acme")
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			if !got.TakenAt.Equal(want.TakenAt) || got.Configuration != "acme" || len(got.Users) != n {
				t.Fatalf("Snapshot = %s %v %d users; want %v %d", got.Configuration, got.TakenAt, len(got.Users), want.TakenAt, n)
			}
			if n > 0 && !reflect.DeepEqual(got.Users, want.Users) {
				t.Errorf("users differ after round trip")
			}
		})
	}
}

func TestSnapshotReplaceIsAtomic(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	old := plugin.Snapshot{Configuration: "acme", TakenAt: clk.Now(), Users: makeUsers(3000)}
	if err := s.PutSnapshot(ctx, old); err != nil {
		t.Fatal(err)
	}
	// A failed write (here: a cancelled sync) leaves the old snapshot whole.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.PutSnapshot(cctx, plugin.Snapshot{Configuration: "acme", Users: makeUsers(10)}); err == nil {
		t.Fatalf("PutSnapshot with a cancelled context succeeded")
	}
	got, err := s.Snapshot(ctx, "acme")
	if err != nil || len(got.Users) != 3000 {
		t.Fatalf("after failed put: %d users, %v; want the old 3000", len(got.Users), err)
	}
	// A smaller snapshot leaves no chunk of the larger one behind.
	if err := s.PutSnapshot(ctx, plugin.Snapshot{Configuration: "acme", TakenAt: clk.Now(), Users: makeUsers(5)}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Snapshot(ctx, "acme")
	if err != nil || len(got.Users) != 5 {
		t.Fatalf("after replace: %d users, %v; want 5", len(got.Users), err)
	}
}

func TestUserCodecCorrupt(t *testing.T) {
	good := encodeUsers(makeUsers(3))
	for name, b := range map[string][]byte{
		"empty":       nil,
		"bad version": append([]byte{9}, good[1:]...),
		"truncated":   good[:len(good)-3],
		"trailing":    append(append([]byte(nil), good...), 1),
		"huge count":  {usersV1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge length": {usersV1, 1, 0xff, 0xff, 0x03},
		"bad varint":  {usersV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := decodeUsers(nil, b); err == nil {
			t.Errorf("%s: decodeUsers succeeded", name)
		}
	}
}

func TestSyncStatus(t *testing.T) {
	ctx := context.Background()
	s, clk, _ := newStore(t)
	mustCreate(t, s, "acme")
	st, err := s.SyncStatus(ctx, "acme")
	if err != nil || st.State != "idle" {
		t.Fatalf("SyncStatus before any = %+v, %v; want idle", st, err)
	}
	want := plugin.SyncStatus{State: "ok", StartedAt: clk.Now(), FinishedAt: clk.Now().Add(time.Second), Users: 10, Scored: 9, UnknownGrades: 1, Pages: 1}
	if err := s.PutSyncStatus(ctx, "acme", want); err != nil {
		t.Fatal(err)
	}
	st, err = s.SyncStatus(ctx, "acme")
	if err != nil || !reflect.DeepEqual(st, want) {
		t.Errorf("SyncStatus = %+v, %v; want %+v", st, err, want)
	}
}

func benchStore(b *testing.B) *Store {
	b.Helper()
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), testKey(1), nil)
	mustCreate(b, s, "acme")
	return s
}

func BenchmarkPutSnapshot100k(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	snap := plugin.Snapshot{Configuration: "acme", TakenAt: time.Now(), Users: makeUsers(100_000)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.PutSnapshot(ctx, snap); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshot100k(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	if err := s.PutSnapshot(ctx, plugin.Snapshot{Configuration: "acme", TakenAt: time.Now(), Users: makeUsers(100_000)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		snap, err := s.Snapshot(ctx, "acme")
		if err != nil || len(snap.Users) != 100_000 {
			b.Fatal(len(snap.Users), err)
		}
	}
}
