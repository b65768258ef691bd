package mimecast_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// emulated starts the emulator on the test's fake clock and returns a
// client for it (API 1.0 unless oauth).
// Calls are counted with the client's Observer: the emulator counts after
// its reply is written, so its Stats may lag the client by a call.
func emulated(t testing.TB, eo mimecasttest.Options, oauth bool, mutate func(*mimecast.Options)) (*mimecasttest.Server, *mimecast.Client, *fakeClock, *countingObserver) {
	t.Helper()
	obs := &countingObserver{}
	clk := newFakeClock()
	eo.Now = clk.Now
	if eo.Seed == 0 {
		eo.Seed = 7
	}
	s := mimecasttest.NewTestServer(t, eo)
	o := mimecast.Options{BaseURL: s.URL(), Now: clk.Now, Sleep: clk.Sleep, Jitter: noJitter, Observer: obs}
	if oauth {
		o.Auth, o.ClientID, o.ClientSecret = "oauth2", mimecasttest.DefaultClientID, mimecasttest.DefaultClientSecret
	} else {
		o.Auth = "legacy"
		o.AppID, o.AppKey = mimecasttest.DefaultAppID, mimecasttest.DefaultAppKey
		o.AccessKey, o.SecretKey = mimecasttest.DefaultAccessKey, mimecasttest.DefaultSecretKey
	}
	if mutate != nil {
		mutate(&o)
	}
	c, err := mimecast.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, c, clk, obs
}

func TestEmulatorGradesAndAccount(t *testing.T) {
	for _, oauth := range []bool{false, true} {
		t.Run(fmt.Sprintf("oauth=%v", oauth), func(t *testing.T) {
			s, c, _, obs := emulated(t, mimecasttest.Options{Users: 1234}, oauth, nil)
			ctx := context.Background()
			a, err := c.Account(ctx)
			if err != nil {
				t.Fatalf("Account: %v", err)
			}
			if !a.HasAwareness() || a.Code == "" {
				t.Errorf("got account %+v, want one with Awareness Training", a)
			}
			var got []plugin.UserGrade
			if err := c.EachGradePage(ctx, 500, func(p []plugin.UserGrade) error { got = append(got, p...); return nil }); err != nil {
				t.Fatalf("EachGradePage: %v", err)
			}
			want := s.Users()
			if len(got) != len(want) {
				t.Fatalf("got %d users, want %d", len(got), len(want))
			}
			for i, u := range want {
				w := plugin.UserGrade{Email: u.Email, Name: u.Name, Department: u.Department, Risk: u.Risk, HumanError: u.HumanError,
					Sentiment: u.Sentiment, Engagement: u.Engagement, Knowledge: u.Knowledge, UserState: u.UserState}
				if got[i] != w {
					t.Fatalf("user %d: got %+v, want %+v", i, got[i], w)
				}
			}
			if n := obs.count(mimecasttest.PathSafeScoreDetails); n != 3 {
				t.Errorf("got %d calls for 1234 users at 500 a page, want 3", n)
			}
		})
	}
}

func TestEmulatorNoAwareness(t *testing.T) {
	_, c, _, _ := emulated(t, mimecasttest.Options{NoAwarenessPackage: true}, false, nil)
	a, err := c.Account(context.Background())
	if err != nil || a.HasAwareness() {
		t.Errorf("got %+v %v, want an account without Awareness Training", a, err)
	}
}

func TestEmulatorGroupsAndMembers(t *testing.T) {
	s, c, _, obs := emulated(t, mimecasttest.Options{Users: 40}, false, func(o *mimecast.Options) { o.BatchSize = 7; o.PageSize = 3 })
	ctx := context.Background()
	all, err := c.FindGroups(ctx, "")
	if err != nil {
		t.Fatalf("FindGroups: %v", err)
	}
	if want := s.Groups(); len(all) != len(want) {
		t.Errorf("got %d groups, want %d (page size 3 means several pages)", len(all), len(want))
	}
	g, err := c.CreateGroup(ctx, "Risky Users Q3")
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	found, err := c.FindGroups(ctx, "Risky Users")
	if err != nil || !slices.ContainsFunc(found, func(f plugin.Group) bool { return f.ID == g.ID && f.Name == "Risky Users Q3" }) {
		t.Fatalf("FindGroups after create: %+v %v", found, err)
	}

	users := s.Users()
	var emails []string
	for _, u := range users[:20] {
		emails = append(emails, u.Email)
	}
	s.AddGroupMember(g.ID, users[3].Email)                                  // already a member
	emails = append(emails, "stranger@elsewhere.example", "not-an-address") // not managed, invalid
	res, err := c.AddMembers(ctx, g.ID, emails)
	if err != nil {
		t.Fatalf("AddMembers: %v", err)
	}
	if len(res) != len(emails) {
		t.Fatalf("got %d results, want %d", len(res), len(emails))
	}
	for i, r := range res {
		want := plugin.Done
		switch {
		case i == 3:
			want = plugin.Skipped
		case i >= 20:
			want = plugin.Failed
		}
		if r.Email != emails[i] || r.Status != want {
			t.Errorf("result %d: got %+v, want %s", i, r, want)
		}
	}
	if res[3].Reason != "already a member" || res[20].Reason != "address not managed by this Mimecast account" || res[21].Reason == "" {
		t.Errorf("reasons: %q %q %q", res[3].Reason, res[20].Reason, res[21].Reason)
	}
	if n := obs.count(mimecasttest.PathAddGroupMember); n != 4 { // 22 items, 7 a call
		t.Errorf("got %d add calls, want 4", n)
	}

	members, err := c.GroupMembers(ctx, g.ID)
	if err != nil {
		t.Fatalf("GroupMembers: %v", err)
	}
	var wantMembers []string
	for _, e := range emails[:20] {
		wantMembers = append(wantMembers, strings.ToLower(e))
	}
	slices.Sort(members)
	slices.Sort(wantMembers)
	if !reflect.DeepEqual(members, wantMembers) {
		t.Errorf("members: got %v, want %v", members, wantMembers)
	}

	res, err = c.RemoveMembers(ctx, g.ID, []string{users[0].Email, users[30].Email})
	if err != nil {
		t.Fatalf("RemoveMembers: %v", err)
	}
	if res[0].Status != plugin.Done || res[1].Status != plugin.Skipped || res[1].Reason != "not a member" {
		t.Errorf("remove: got %+v", res)
	}
	if got := len(s.GroupMembers(g.ID)); got != 19 {
		t.Errorf("got %d members left, want 19", got)
	}
}

func TestEmulatorLogs(t *testing.T) {
	s, c, _, _ := emulated(t, mimecasttest.Options{Users: 60, LogVolume: map[string]int{"url": 230, "attachment": 120, "impersonation": 90, "dlp": 75}}, true, nil)
	from, to := s.LogWindow()
	to = to.Add(time.Second)
	for _, kind := range plugin.LogKinds {
		t.Run(string(kind), func(t *testing.T) {
			want := s.LogRecords(string(kind), from, to)
			var got []plugin.LogRecord
			pages := 0
			err := c.EachLogPage(context.Background(), kind, plugin.LogQuery{From: from, To: to, OldestFirst: true, PageSize: 50},
				func(p plugin.LogPage) error { pages++; got = append(got, p.Records...); return nil })
			if err != nil {
				t.Fatalf("EachLogPage: %v", err)
			}
			if len(got) != len(want) || len(want) == 0 {
				t.Fatalf("got %d records, want %d", len(got), len(want))
			}
			if pages != (len(want)+49)/50 {
				t.Errorf("got %d pages, want %d", pages, (len(want)+49)/50)
			}
			timeKey := "date"
			if kind == plugin.LogImpersonation || kind == plugin.LogDLP {
				timeKey = "eventTime"
			}
			var prev time.Time
			for i, r := range got {
				ts, _ := r[timeKey].(string)
				at, err := mimecast.ParseTime(ts)
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if at.Before(prev) {
					t.Fatalf("record %d is older than the one before it (oldestFirst)", i)
				}
				prev = at
			}
			if !reflect.DeepEqual(got[0], plugin.LogRecord(want[0])) {
				t.Errorf("record 1: got %v, want %v", got[0], want[0])
			}
		})
	}
}

func TestEmulatorFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("5xx then success", func(t *testing.T) {
		s, c, clk, obs := emulated(t, mimecasttest.Options{}, false, nil)
		s.SetFaults(mimecasttest.Faults{FailNext: 2})
		if _, err := c.Account(ctx); err != nil {
			t.Fatalf("Account: %v", err)
		}
		if n := obs.count(mimecasttest.PathGetAccount); n != 3 || len(clk.Sleeps()) != 2 {
			t.Errorf("got %d calls and sleeps %v", n, clk.Sleeps())
		}
	})
	t.Run("429 honoured", func(t *testing.T) {
		s, c, clk, _ := emulated(t, mimecasttest.Options{}, true, nil)
		s.SetFaults(mimecasttest.Faults{RateLimitNext: 1, RateLimitResetMS: 2500, Endpoint: mimecasttest.PathFindGroups})
		if _, err := c.FindGroups(ctx, ""); err != nil {
			t.Fatalf("FindGroups: %v", err)
		}
		if got := clk.Sleeps(); !reflect.DeepEqual(got, []time.Duration{2500 * time.Millisecond}) {
			t.Errorf("sleeps: got %v, want [2.5s]", got)
		}
	})
	t.Run("truncated reply retried", func(t *testing.T) {
		s, c, _, _ := emulated(t, mimecasttest.Options{Users: 30}, false, nil)
		s.SetFaults(mimecasttest.Faults{TruncateNext: 1})
		n := 0
		if err := c.EachGradePage(ctx, 0, func(p []plugin.UserGrade) error { n += len(p); return nil }); err != nil || n != 30 {
			t.Fatalf("got %d users, %v", n, err)
		}
	})
	t.Run("aborted reply retried", func(t *testing.T) {
		s, c, _, _ := emulated(t, mimecasttest.Options{Users: 30}, false, nil)
		s.SetFaults(mimecasttest.Faults{AbortNext: 1})
		if _, err := c.Account(ctx); err != nil {
			t.Fatalf("Account: %v", err)
		}
	})
	t.Run("slow reply times out", func(t *testing.T) {
		s, c, _, _ := emulated(t, mimecasttest.Options{}, false, func(o *mimecast.Options) { o.Timeout = 50 * time.Millisecond; o.MaxAttempts = 2 })
		s.SetFaults(mimecasttest.Faults{SlowNext: 2, SlowBy: 300 * time.Millisecond})
		_, err := c.Account(ctx)
		if plugin.ErrorCode(err) != plugin.EUNAVAILABLE || !strings.Contains(err.Error(), "did not answer within 50ms") || !strings.Contains(err.Error(), "2 attempts") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("binding expired", func(t *testing.T) {
		s, c, _, _ := emulated(t, mimecasttest.Options{}, false, nil)
		s.SetFaults(mimecasttest.Faults{BindingExpireAfter: 1})
		if _, err := c.Account(ctx); err != nil {
			t.Fatalf("first call: %v", err)
		}
		_, err := c.Account(ctx)
		var ae *mimecast.APIError
		if !errors.As(err, &ae) || ae.Kind != mimecast.KindBindingExpired || plugin.ErrorCode(err) != plugin.EUPSTREAMAUTH {
			t.Fatalf("got %v, want binding expired", err)
		}
		if !strings.Contains(plugin.ErrorMessage(err), "create new access and secret keys") {
			t.Errorf("message %q", plugin.ErrorMessage(err))
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		_, c, _, _ := emulated(t, mimecasttest.Options{}, false, func(o *mimecast.Options) { o.SecretKey = "U2VjcmV0S2V5" })
		_, err := c.Account(ctx)
		if plugin.ErrorCode(err) != plugin.EUPSTREAMAUTH || !strings.Contains(plugin.ErrorMessage(err), "invalid signature") {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(err.Error(), "U2VjcmV0S2V5") || strings.Contains(err.Error(), mimecasttest.DefaultAccessKey) {
			t.Errorf("error quotes a key: %v", err)
		}
	})
	t.Run("skewed clock", func(t *testing.T) {
		_, c, _, _ := emulated(t, mimecasttest.Options{}, false, func(o *mimecast.Options) {
			o.Now = func() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }
		})
		_, err := c.Account(ctx)
		if plugin.ErrorCode(err) != plugin.EUPSTREAMAUTH || !strings.Contains(plugin.ErrorMessage(err), "clock") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("revoked token re-minted", func(t *testing.T) {
		s, c, _, obs := emulated(t, mimecasttest.Options{}, true, nil)
		if _, err := c.Account(ctx); err != nil {
			t.Fatal(err)
		}
		s.RevokeTokens()
		if _, err := c.Account(ctx); err != nil {
			t.Fatalf("got %v, want a re-mint after the 401", err)
		}
		if n := obs.count(mimecasttest.PathOAuthToken); n != 2 {
			t.Errorf("got %d token calls, want 2", n)
		}
	})
}

func TestEmulatorRateLimitBucketNever429s(t *testing.T) {
	// With a 5-call bucket refilled one call a second, the client reads
	// X-RateLimit-Remaining: 0 and waits instead of being refused.
	s, c, clk, _ := emulated(t, mimecasttest.Options{Users: 200, RateLimit: mimecasttest.RateLimit{Capacity: 5, Refill: time.Second}}, false, nil)
	n := 0
	if err := c.EachGradePage(context.Background(), 10, func(p []plugin.UserGrade) error { n += len(p); return nil }); err != nil {
		t.Fatalf("EachGradePage: %v", err)
	}
	stats := s.Stats()
	if n != 200 || stats["status 429"] != 0 {
		t.Errorf("got %d users and %d refusals (stats %v), want 200 and none", n, stats["status 429"], stats)
	}
	if len(clk.Sleeps()) == 0 {
		t.Errorf("the client never waited")
	}
}

func BenchmarkSafeScores100kEmulator(b *testing.B) {
	s := mimecasttest.NewTestServer(b, mimecasttest.Options{Users: 100_000, Seed: 1})
	obs := &countingObserver{}
	c, err := mimecast.New(mimecast.Options{BaseURL: s.URL(), Observer: obs, AppID: mimecasttest.DefaultAppID, AppKey: mimecasttest.DefaultAppKey,
		AccessKey: mimecasttest.DefaultAccessKey, SecretKey: mimecasttest.DefaultSecretKey})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		n := 0
		if err := c.EachGradePage(ctx, 500, func(p []plugin.UserGrade) error { n += len(p); return nil }); err != nil || n != 100_000 {
			b.Fatalf("got %d users, %v", n, err)
		}
	}
	pulled := float64(b.N) * 100_000
	b.ReportMetric(pulled/time.Since(start).Seconds(), "users/s")
	b.ReportMetric(float64(obs.count(mimecasttest.PathSafeScoreDetails))/float64(b.N), "calls/pull")
}
