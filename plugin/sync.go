package plugin

import (
	"context"
	"errors"
	"strings"
	"time"

	"mimecast-ure/scoring"
)

// Sync states of SyncStatus.State.
const (
	SyncIdle    = "idle"
	SyncRunning = "running"
	SyncOK      = "ok"
	SyncFailed  = "failed"
)

// syncRetryAfterFailure is how soon the loop tries again after a failed
// sync (or the interval, if shorter).
const syncRetryAfterFailure = 5 * time.Minute

// gradeIndex is one configuration's snapshot in memory: the users in the
// order Mimecast listed them and an index by normalized address. It is
// never changed after it is built; a sync swaps in a new one.
type gradeIndex struct {
	takenAt time.Time
	users   []UserGrade
	byEmail map[string]int32
}

func (x *gradeIndex) lookup(uid string) (UserGrade, bool) {
	i, ok := x.byEmail[NormalizeEmail(uid)]
	if !ok {
		return UserGrade{}, false
	}
	return x.users[i], true
}

// newGradeIndex indexes a stored snapshot (its users are already unique).
func newGradeIndex(snap Snapshot) *gradeIndex {
	x := &gradeIndex{takenAt: snap.TakenAt, users: snap.Users, byEmail: make(map[string]int32, len(snap.Users))}
	for i, u := range snap.Users {
		k := NormalizeEmail(u.Email)
		if _, dup := x.byEmail[k]; !dup && k != "" {
			x.byEmail[k] = int32(i)
		}
	}
	return x
}

// syncLoop is one configuration's background sync loop.
type syncLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// pullCall is one grade pull in flight; callers that need it wait on done.
type pullCall struct {
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// startLoop (re)starts the sync loop of cfg; with immediate the first pull
// starts now, otherwise one interval after the last sync finished.
func (s *Service) startLoop(cfg Configuration, immediate bool) {
	h := s.host
	old := s.stopLoopNoWait(cfg.Name)
	if old != nil {
		<-old.done
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started || h.closed {
		return
	}
	ctx, cancel := context.WithCancel(h.base)
	l := &syncLoop{cancel: cancel, done: make(chan struct{})}
	if !h.goTrackedLocked(func() {
		defer close(l.done)
		s.runLoop(ctx, cfg, immediate)
	}) {
		cancel()
		return
	}
	h.loops[cfg.Name] = l
}

// stopLoopNoWait cancels the loop of name and returns it so the caller can
// wait for it outside the lock.
func (s *Service) stopLoopNoWait(name string) *syncLoop {
	h := s.host
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.loops[name]
	if l != nil {
		l.cancel()
		delete(h.loops, name)
	}
	return l
}

func (s *Service) runLoop(ctx context.Context, cfg Configuration, immediate bool) {
	interval := time.Duration(cfg.SyncInterval)
	if interval < MinSyncInterval {
		interval = DefaultSyncInterval
	}
	wait := time.Duration(0)
	if !immediate {
		st, err := s.store.SyncStatus(ctx, cfg.Name)
		if err == nil && !st.FinishedAt.IsZero() && st.State != SyncRunning {
			wait = max(st.FinishedAt.Add(interval).Sub(s.now()), 0)
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		call := s.startPull(cfg)
		select {
		case <-ctx.Done():
			return
		case <-call.done:
		}
		next := interval
		if call.err != nil {
			// Serve stale grades for minutes, not a whole interval.
			next = min(interval, syncRetryAfterFailure)
		}
		t.Reset(next)
	}
}

// startPull starts a grade pull of cfg, or returns the one already in
// flight for that configuration so there is never a second.
func (s *Service) startPull(cfg Configuration) *pullCall {
	h := s.host
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.pulls[cfg.Name]; p != nil {
		return p
	}
	ctx, cancel := context.WithCancel(h.base)
	p := &pullCall{done: make(chan struct{}), cancel: cancel}
	gen := h.gen[cfg.Name]
	ok := h.goTrackedLocked(func() {
		err := s.runPull(ctx, cfg, gen)
		cancel()
		h.mu.Lock()
		p.err = err
		if h.pulls[cfg.Name] == p {
			delete(h.pulls, cfg.Name)
		}
		h.mu.Unlock()
		close(p.done)
	})
	if !ok {
		cancel()
		p.err = Errorf(EUNAVAILABLE, "the service is shutting down")
		close(p.done)
		return p
	}
	h.pulls[cfg.Name] = p
	return p
}

// forget drops everything kept in memory for a configuration that was
// changed or deleted: the pull in flight is cancelled and will not write,
// the group cache is emptied; with dropIndex the grade index goes too.
func (s *Service) forget(name string, dropIndex bool) {
	h := s.host
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen[name]++
	if p := h.pulls[name]; p != nil {
		p.cancel()
		delete(h.pulls, name)
	}
	delete(h.groups, name)
	if dropIndex {
		delete(h.index, name)
	}
}

// pullCounts are the numbers one pull reports.
type pullCounts struct {
	users, scored, unknown, duplicates, noEmail, pages int
}

// runPull pulls every grade of cfg and, only when the whole pull
// succeeded, stores the snapshot and swaps the index in memory. A failed
// or interrupted pull leaves the previous snapshot served.
func (s *Service) runPull(ctx context.Context, cfg Configuration, gen uint64) error {
	start := s.now()
	log := s.log.With().Str("configuration", cfg.Name).Logger()
	st, err := s.store.SyncStatus(ctx, cfg.Name)
	if err != nil {
		st = SyncStatus{}
	}
	st.State, st.StartedAt, st.Error = SyncRunning, start.UTC(), ""
	if err := s.store.PutSyncStatus(ctx, cfg.Name, st); err != nil {
		log.Warn().Err(err).Msg("could not save the sync status")
	}

	idx, n, err := s.pullGrades(ctx, cfg)
	if err == nil {
		err = s.saveIndex(ctx, cfg.Name, gen, idx)
	}
	d := s.now().Sub(start)
	st.FinishedAt = s.now().UTC()
	st.Pages = n.pages
	if err != nil {
		st.State = SyncFailed
		st.Error = syncErrorMessage(err)
		log.Warn().Err(err).Int("pages", n.pages).Dur("took", d).Msg("grade sync failed; the previous snapshot stays in use")
	} else {
		st.State = SyncOK
		st.Users, st.Scored, st.UnknownGrades = n.users, n.scored, n.unknown
		st.SnapshotAt = idx.takenAt
		ev := log.Info()
		if n.unknown > 0 {
			ev = log.Warn()
		}
		ev.Int("users", n.users).Int("scored", n.scored).Int("unknown_grades", n.unknown).
			Int("duplicates", n.duplicates).Int("without_address", n.noEmail).Int("pages", n.pages).
			Dur("took", d).Msg("grade sync finished")
	}
	// The status is written even when the pull was cancelled, so a
	// restart does not show a sync forever running; but not for a
	// configuration deleted or replaced meanwhile.
	if s.host.generation(cfg.Name) != gen {
		s.m.SyncFinished(cfg.Name, false, d)
		return err
	}
	if perr := s.store.PutSyncStatus(context.WithoutCancel(ctx), cfg.Name, st); perr != nil {
		log.Warn().Err(perr).Msg("could not save the sync status")
	}
	s.m.SyncFinished(cfg.Name, err == nil, d)
	return err
}

func syncErrorMessage(err error) string {
	if errors.Is(err, context.Canceled) && ErrorCode(err) == EINTERNAL {
		return "the sync was cancelled (configuration changed or service shutting down)"
	}
	return ErrorMessage(err)
}

// pullGrades reads every page of grades into a new index. Users without an
// address are dropped, duplicate addresses (any case) keep the first, and
// a missing or unknown grade is counted, never fatal.
func (s *Service) pullGrades(ctx context.Context, cfg Configuration) (*gradeIndex, pullCounts, error) {
	var n pullCounts
	mc, err := s.mimecastClient(cfg)
	if err != nil {
		return nil, n, err
	}
	table, err := scoring.NewTable(cfg.Score.Band, cfg.Score.Mapping)
	if err != nil {
		return nil, n, scoreError(err)
	}
	hint := 0
	s.host.mu.Lock()
	if old := s.host.index[cfg.Name]; old != nil {
		hint = len(old.users)
	}
	s.host.mu.Unlock()

	users := make([]UserGrade, 0, hint)
	byEmail := make(map[string]int32, hint)
	// Grades, states and departments repeat across users: share one copy.
	interned := map[string]string{}
	intern := func(v string) string {
		if v == "" || len(v) > 64 {
			return v
		}
		if x, ok := interned[v]; ok {
			return x
		}
		if len(interned) < 4096 {
			interned[v] = v
		}
		return v
	}
	log := s.log.With().Str("configuration", cfg.Name).Logger()
	pageSize := cfg.Mimecast.PageSize
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	err = mc.EachGradePage(ctx, pageSize, func(page []UserGrade) error {
		n.pages++
		for _, u := range page {
			u.Email = strings.TrimSpace(u.Email)
			key := NormalizeEmail(u.Email)
			if key == "" {
				n.noEmail++
				continue
			}
			if _, dup := byEmail[key]; dup {
				n.duplicates++
				log.Debug().Str("user", key).Msg("duplicate address in the grade list; keeping the first")
				continue
			}
			u.Risk = intern(u.Risk)
			u.HumanError, u.Sentiment = intern(u.HumanError), intern(u.Sentiment)
			u.Engagement, u.Knowledge = intern(u.Engagement), intern(u.Knowledge)
			u.UserState, u.Department = intern(u.UserState), intern(u.Department)
			if _, ok := table.Score(u.Risk); ok {
				n.scored++
			} else {
				n.unknown++
				log.Debug().Str("user", key).Str("grade", u.Risk).Msg("missing or unknown grade; the user gets no score")
			}
			byEmail[key] = int32(len(users))
			users = append(users, u)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, n, err
	}
	n.users = len(users)
	return &gradeIndex{takenAt: s.now().UTC(), users: users, byEmail: byEmail}, n, nil
}

// saveIndex stores idx as the configuration's snapshot and serves it,
// unless the configuration changed since the pull began.
func (s *Service) saveIndex(ctx context.Context, name string, gen uint64, idx *gradeIndex) error {
	h := s.host
	stale := func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.gen[name] != gen
	}
	if stale() {
		return Errorf(EUNAVAILABLE, "the configuration changed during the sync; its result was discarded")
	}
	if err := s.store.PutSnapshot(ctx, Snapshot{Configuration: name, TakenAt: idx.takenAt, Users: idx.users}); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen[name] != gen {
		return Errorf(EUNAVAILABLE, "the configuration changed during the sync; its result was discarded")
	}
	h.index[name] = idx
	return nil
}

// gradeIndex returns the configuration's grade index: from memory, else
// from the stored snapshot, else from one pull shared by every caller.
func (s *Service) gradeIndex(ctx context.Context, cfg Configuration) (*gradeIndex, error) {
	h := s.host
	get := func() *gradeIndex {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.index[cfg.Name]
	}
	if x := get(); x != nil {
		return x, nil
	}
	x, err := s.loadIndex(ctx, cfg.Name)
	if err != nil || x != nil {
		return x, err
	}
	call := s.startPull(cfg)
	select {
	case <-ctx.Done():
		return nil, Errorf(EUNAVAILABLE, "the first grade sync of %q is still running; try again shortly", cfg.Name)
	case <-call.done:
	}
	if call.err != nil {
		return nil, call.err
	}
	if x := get(); x != nil {
		return x, nil
	}
	return nil, Errorf(EUNAVAILABLE, "no grade snapshot of %q is available yet; try again shortly", cfg.Name)
}

// loadIndex reads the stored snapshot into memory (once, however many
// callers ask); nil, nil when there is none yet.
func (s *Service) loadIndex(ctx context.Context, name string) (*gradeIndex, error) {
	h := s.host
	unlock := h.lockKey("load\x00" + name)
	defer unlock()
	h.mu.Lock()
	x, gen := h.index[name], h.gen[name]
	h.mu.Unlock()
	if x != nil {
		return x, nil
	}
	snap, err := s.store.Snapshot(ctx, name)
	if ErrorCode(err) == ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	x = newGradeIndex(snap)
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur := h.index[name]; cur != nil {
		return cur, nil
	}
	if h.gen[name] == gen {
		h.index[name] = x
	}
	return x, nil
}

// FetchRecords lists every user of the configuration's grade snapshot.
// ENOTFOUND for an unknown configuration; EUNAVAILABLE or EUPSTREAMAUTH
// when there is no snapshot yet and the first pull fails.
func (s *Service) FetchRecords(ctx context.Context, name string) ([]Record, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return nil, err
	}
	x, err := s.gradeIndex(ctx, cfg)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(x.users))
	for _, u := range x.users {
		out = append(out, Record{UID: NormalizeEmail(u.Email), Type: "user"})
	}
	return out, nil
}

// FetchScores scores the named users (all users when uids is empty) from
// the snapshot. Users unknown to Mimecast or without a known grade are
// left out; each user appears once.
func (s *Service) FetchScores(ctx context.Context, name string, uids []string) ([]ScoredRecord, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return nil, err
	}
	table, err := scoring.NewTable(cfg.Score.Band, cfg.Score.Mapping)
	if err != nil {
		return nil, scoreError(err)
	}
	x, err := s.gradeIndex(ctx, cfg)
	if err != nil {
		return nil, err
	}
	score := func(u UserGrade) (ScoredRecord, bool) {
		g, ok := scoring.NormalizeGrade(u.Risk)
		if !ok {
			return ScoredRecord{}, false
		}
		v, ok := table.Score(g)
		if !ok {
			return ScoredRecord{}, false
		}
		return ScoredRecord{UID: NormalizeEmail(u.Email), Type: "user", Score: v, Grade: g}, true
	}
	var out []ScoredRecord
	if len(uids) == 0 {
		out = make([]ScoredRecord, 0, len(x.users))
		for _, u := range x.users {
			if r, ok := score(u); ok {
				out = append(out, r)
			}
		}
	} else {
		out = make([]ScoredRecord, 0, len(uids))
		seen := make(map[int32]struct{}, len(uids))
		for _, uid := range uids {
			i, ok := x.byEmail[NormalizeEmail(uid)]
			if !ok {
				continue
			}
			if _, dup := seen[i]; dup {
				continue
			}
			seen[i] = struct{}{}
			if r, ok := score(x.users[i]); ok {
				out = append(out, r)
			}
		}
	}
	return s.applyEventScores(ctx, cfg, out)
}

// lookupUser finds uid (any case) in the configuration's current grade
// snapshot (pulling once if there is none yet) and returns the record and
// its grade-only score; ok is false when the user is unknown or the grade
// has no score.
func (s *Service) lookupUser(ctx context.Context, cfg Configuration, uid string) (u UserGrade, gradeScore int, ok bool, err error) {
	table, err := scoring.NewTable(cfg.Score.Band, cfg.Score.Mapping)
	if err != nil {
		return UserGrade{}, 0, false, scoreError(err)
	}
	x, err := s.gradeIndex(ctx, cfg)
	if err != nil {
		return UserGrade{}, 0, false, err
	}
	u, found := x.lookup(uid)
	if !found {
		return UserGrade{}, 0, false, nil
	}
	v, ok := table.Score(u.Risk)
	return u, v, ok, nil
}

// TriggerSync starts a grade pull of the configuration now and returns
// without waiting; if one is already running no second one starts.
// ENOTFOUND for an unknown configuration.
func (s *Service) TriggerSync(ctx context.Context, name string) error {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return err
	}
	p := s.startPull(cfg)
	select {
	case <-p.done:
		if ErrorCode(p.err) == EUNAVAILABLE && s.isClosed() {
			return p.err
		}
	default:
	}
	return nil
}

func (h *hostState) generation(name string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen[name]
}

func (s *Service) isClosed() bool {
	s.host.mu.Lock()
	defer s.host.mu.Unlock()
	return s.host.closed
}

// SyncStatus returns the last grade sync's status ("running" while one is
// in flight, "idle" before the first). ENOTFOUND for an unknown configuration.
func (s *Service) SyncStatus(ctx context.Context, name string) (SyncStatus, error) {
	st, err := s.store.SyncStatus(ctx, name)
	if err != nil {
		return SyncStatus{}, err
	}
	if st.State == "" {
		st.State = SyncIdle
	}
	s.host.mu.Lock()
	_, running := s.host.pulls[name]
	s.host.mu.Unlock()
	if running {
		st.State = SyncRunning
	} else if st.State == SyncRunning {
		// A pull that was running when the process stopped.
		st.State = SyncFailed
		if st.Error == "" {
			st.Error = "the sync was interrupted"
		}
	}
	return st, nil
}

// scoreError turns a score table error into an EINVALID naming the field.
func scoreError(err error) error {
	var fe *scoring.FieldError
	if errors.As(err, &fe) {
		return FieldError(fe.Field, "%s", fe.Message)
	}
	return FieldError("score", "%s", err.Error())
}
