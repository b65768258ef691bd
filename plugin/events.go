package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"mimecast-ure/scoring"
)

// Security events. Per configuration with events enabled, a loop pulls the
// four Mimecast security logs on its own interval, oldest first from each
// log's checkpoint (less a short overlap for late records), and turns
// records into risk events with the configuration's Detector. Each page's
// events, the records set aside and the advanced checkpoint are stored in
// one transaction, so a crash or an upstream failure resumes exactly where
// the store stands; stable event ids make re-reads harmless. After each
// commit the controls act on the events and nudges go out (a nudge that
// fails is kept pending and retried by the next pull). Whether a pull is
// running or queued is kept per configuration (EventsPullState). Retention,
// the per-user score cache and the read side (status, listing, user
// explanation, targets) live here too.

// Event pull tuning.
const (
	// eventOverlap is how far before a log's checkpoint each pull starts
	// again, to catch records Mimecast indexes late. Stable event ids make
	// the re-read harmless.
	eventOverlap = 10 * time.Minute
	// nudgeMaxAge: events older than this when first seen (first run's
	// lookback, a pull after downtime) get no nudge; a late nudge teaches
	// nothing.
	nudgeMaxAge = 48 * time.Hour
	// maxRejectedRecord caps the raw JSON kept for a record set aside.
	maxRejectedRecord = 2048
	// scanPage is the page size of internal event scans.
	scanPage = 5000
	// DefaultTargetsSince is the window of Targets when none is given.
	DefaultTargetsSince = 30 * 24 * time.Hour
	// MaxEventsLimit caps one page of Events.
	MaxEventsLimit = 1000
	// DefaultEventsLimit is the page size of Events when none is given.
	DefaultEventsLimit = 100
)

// Audit actions of the event pipeline.
const (
	AuditNudge = "events.nudge"
)

// eventState holds the event pull loops, the pulls in flight and the
// per-configuration score caches. Every field is guarded by mu.
type eventState struct {
	mu sync.Mutex
	// base is cancelled by stopEvents (or when Start's context ends).
	base    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	closed  bool

	loops   map[string]*eventLoop
	pulling map[string]chan struct{} // one-slot semaphore per configuration
	runs    map[string]*pullRun      // running/queued state per configuration
	scores  map[string]*userScores
	builds  map[string]*sync.Mutex // serializes score-cache builds

	// sleep waits between webhook attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

type eventLoop struct {
	cancel   context.CancelFunc
	interval time.Duration
}

func newEventState() *eventState {
	ctx, cancel := context.WithCancel(context.Background())
	return &eventState{
		base:    ctx,
		cancel:  cancel,
		loops:   map[string]*eventLoop{},
		pulling: map[string]chan struct{}{},
		runs:    map[string]*pullRun{},
		scores:  map[string]*userScores{},
		builds:  map[string]*sync.Mutex{},
		sleep:   sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// goTracked runs fn in a goroutine stopEvents waits for; false when the
// events are stopped (fn is not run).
func (st *eventState) goTracked(fn func()) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed || st.base.Err() != nil {
		return false
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		fn()
	}()
	return true
}

func (st *eventState) semaphore(name string) chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	sem := st.pulling[name]
	if sem == nil {
		sem = make(chan struct{}, 1)
		st.pulling[name] = sem
	}
	return sem
}

// EventsPullState is whether a configuration's event pull is running, as
// EventsPullState returns it. The times come from the service's clock.
type EventsPullState struct {
	// Running is true while a pull reads the logs. Until it is false
	// again the checkpoints show a pull in progress, not a finished one.
	Running bool `json:"running"`
	// Queued is true when a pull was asked for while one ran: exactly
	// one follow-up pull starts when the running one ends.
	Queued bool `json:"queued"`
	// StartedAt is when the last pull started (zero: none yet).
	StartedAt time.Time `json:"started_at,omitzero"`
	// FinishedAt is when the last pull finished (zero: none yet). While
	// Running it is the end of the previous pull.
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Pulls counts the pulls finished since the service started: a caller
	// waiting for "its" pull notes it first and waits until it grows with
	// Running and Queued false.
	Pulls int `json:"pulls"`
	// Error is the last finished pull's error, safe to show ("" when it
	// succeeded).
	Error string `json:"error,omitempty"`
}

// pullRun is one configuration's pull state (guarded by eventState.mu).
type pullRun struct {
	EventsPullState
	// changed is closed and replaced on every change (WaitEventsIdle).
	changed chan struct{}
}

// runLocked returns name's pull state, creating it (st.mu held).
func (st *eventState) runLocked(name string) *pullRun {
	r := st.runs[name]
	if r == nil {
		r = &pullRun{changed: make(chan struct{})}
		st.runs[name] = r
	}
	return r
}

func (r *pullRun) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// beginRunLocked records that a pull starts now (st.mu held, the pull's
// semaphore taken). fromQueue clears the queued follow-up it is.
func (s *Service) beginRunLocked(name string, fromQueue bool) {
	r := s.events.runLocked(name)
	r.Running, r.StartedAt = true, s.now().UTC()
	if fromQueue {
		r.Queued = false
	}
	r.notifyLocked()
}

// endRun records that the running pull finished with err.
func (s *Service) endRun(name string, err error) {
	st := s.events
	st.mu.Lock()
	defer st.mu.Unlock()
	r := st.runLocked(name)
	r.Running, r.FinishedAt = false, s.now().UTC()
	r.Pulls++
	switch {
	case err == nil:
		r.Error = ""
	case errors.Is(err, context.Canceled):
		r.Error = "the pull was cancelled (shutting down)"
	default:
		r.Error = safeMessage(err)
	}
	r.notifyLocked()
}

func eventsEnabled(cfg Configuration) bool {
	return cfg.Events != nil && cfg.Events.Enabled
}

func controlsEnabled(cfg Configuration) bool {
	return cfg.Controls != nil && cfg.Controls.Enabled
}

// startEvents starts one pull loop per configuration with events enabled
// (called by Start). The loops run until ctx ends or stopEvents.
func (s *Service) startEvents(ctx context.Context) {
	st := s.events
	st.mu.Lock()
	if st.started || st.closed {
		st.mu.Unlock()
		return
	}
	st.started = true
	st.mu.Unlock()
	context.AfterFunc(ctx, st.cancel)
	cfgs, err := s.store.Configurations(st.base)
	if err != nil {
		s.log.Error().Err(err).Msg("events: could not read the configurations; no event loops started")
		return
	}
	n := 0
	for _, c := range cfgs {
		if s.reconcileEvents(c.WithDefaults()) {
			n++
		}
	}
	s.log.Info().Int("configurations", n).Msg("event pulls started")
}

// stopEvents stops the loops and pulls and waits for them (called by Close).
func (s *Service) stopEvents() {
	st := s.events
	st.mu.Lock()
	st.closed = true
	for name, l := range st.loops {
		l.cancel()
		delete(st.loops, name)
	}
	st.mu.Unlock()
	st.cancel()
	st.wg.Wait()
}

// eventsConfigChanged reconciles a configuration's event loop after it was
// created, updated or deleted: start, stop, or restart on a new interval.
// Its score cache is dropped either way.
func (s *Service) eventsConfigChanged(name string) {
	st := s.events
	st.mu.Lock()
	delete(st.scores, name)
	running := st.started && !st.closed
	st.mu.Unlock()
	if !running {
		return
	}
	cfg, err := s.configuration(st.base, name)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			// The pull semaphore stays: a pull of the deleted configuration
			// still running must not overlap one of a new namesake.
			s.stopEventLoop(name)
			return
		}
		s.log.Error().Err(err).Str("configuration", name).Msg("events: could not read the changed configuration")
		return
	}
	s.reconcileEvents(cfg)
}

func (s *Service) stopEventLoop(name string) {
	st := s.events
	st.mu.Lock()
	defer st.mu.Unlock()
	if l := st.loops[name]; l != nil {
		l.cancel()
		delete(st.loops, name)
	}
}

// reconcileEvents makes cfg's loop match its settings and reports whether
// one runs.
func (s *Service) reconcileEvents(cfg Configuration) bool {
	want := eventsEnabled(cfg) && s.opts.Detector != nil
	var interval time.Duration
	if want {
		interval = time.Duration(cfg.Events.Interval)
		if interval <= 0 {
			interval = DefaultEventInterval
		}
	}
	st := s.events
	st.mu.Lock()
	defer st.mu.Unlock()
	l := st.loops[cfg.Name]
	if l != nil && want && l.interval == interval {
		return true
	}
	if l != nil {
		l.cancel()
		delete(st.loops, cfg.Name)
	}
	if !want || st.closed || st.base.Err() != nil {
		return false
	}
	ctx, cancel := context.WithCancel(st.base)
	st.loops[cfg.Name] = &eventLoop{cancel: cancel, interval: interval}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		s.eventLoop(ctx, cfg.Name, interval)
	}()
	return true
}

// eventLoop pulls now, then on every tick, until ctx ends. A pull that
// overlaps a running one waits for it.
func (s *Service) eventLoop(ctx context.Context, name string, interval time.Duration) {
	log := s.log.With().Str("component", "events").Str("configuration", name).Logger()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.pullEventsWait(ctx, name); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("event pull failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PullEvents starts a pull of the configuration's four security logs now
// and returns without waiting. When a pull is already running, exactly
// one follow-up pull is queued and starts when the running one ends (a
// second request while one is queued adds nothing): the running pull may
// have passed the records the caller expects. EventsPullState shows
// which. ENOTFOUND for an unknown configuration, EINVALID when its events
// are not enabled, EUNAVAILABLE while shutting down.
func (s *Service) PullEvents(ctx context.Context, name string) error {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return err
	}
	if err := s.eventsUsable(cfg); err != nil {
		return err
	}
	st := s.events
	sem := st.semaphore(name)
	st.mu.Lock()
	r := st.runLocked(name)
	if r.Queued {
		st.mu.Unlock()
		return nil // the queued follow-up will read up to its own now
	}
	acquired := false
	select {
	case sem <- struct{}{}:
		acquired = true
		s.beginRunLocked(name, false)
	default:
		r.Queued = true
		r.notifyLocked()
	}
	st.mu.Unlock()
	run := func() {
		if !acquired {
			select {
			case sem <- struct{}{}:
			case <-st.base.Done():
				st.mu.Lock()
				r.Queued = false
				r.notifyLocked()
				st.mu.Unlock()
				return
			}
			st.mu.Lock()
			s.beginRunLocked(name, true)
			st.mu.Unlock()
		}
		defer func() { <-sem }()
		_, err := s.pullEventsLocked(st.base, name)
		s.endRun(name, err)
		if err != nil && st.base.Err() == nil {
			s.log.Warn().Err(err).Str("component", "events").Str("configuration", name).Msg("event pull failed")
		}
	}
	if !st.goTracked(run) {
		st.mu.Lock()
		if acquired {
			r.Running = false
			<-sem
		} else {
			r.Queued = false
		}
		r.notifyLocked()
		st.mu.Unlock()
		return Errorf(EUNAVAILABLE, "the service is shutting down")
	}
	return nil
}

// EventsPullState returns whether the configuration's event pull is
// running or queued and when the last one started and finished.
// ENOTFOUND for an unknown configuration.
func (s *Service) EventsPullState(ctx context.Context, name string) (EventsPullState, error) {
	if _, err := s.configuration(ctx, name); err != nil {
		return EventsPullState{}, err
	}
	st := s.events
	st.mu.Lock()
	defer st.mu.Unlock()
	if r := st.runs[name]; r != nil {
		return r.EventsPullState, nil
	}
	return EventsPullState{}, nil
}

// WaitEventsIdle waits until the configuration has no pull running or
// queued and returns its state then, or ctx's error. It does not start a
// pull; to wait for one asked for with PullEvents, call it after
// PullEvents returned (which marks the pull running or queued before it
// returns).
func (s *Service) WaitEventsIdle(ctx context.Context, name string) (EventsPullState, error) {
	st := s.events
	for {
		st.mu.Lock()
		r := st.runs[name]
		if r == nil || (!r.Running && !r.Queued) {
			var out EventsPullState
			if r != nil {
				out = r.EventsPullState
			}
			st.mu.Unlock()
			return out, nil
		}
		ch := r.changed
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return EventsPullState{}, ctx.Err()
		}
	}
}

func (s *Service) eventsUsable(cfg Configuration) error {
	if !eventsEnabled(cfg) {
		return Errorf(EINVALID, "events are not enabled for this configuration")
	}
	if s.opts.Detector == nil {
		return Errorf(EINVALID, "events are not available on this server")
	}
	return nil
}

// pullResult counts what one pull did.
type pullResult struct {
	Records  int
	Events   int // new events stored
	Rejected int
	Pages    int
	Pruned   int
	Nudges   int // nudges delivered, retries of earlier ones included
	// Unattributed counts rule matches that made no event because the
	// rule's user field held no address (a DLP bounce's "<>" sender).
	Unattributed int
}

// unattributedCounter is implemented by detectors that count rule matches
// dropped for want of a user address (detect.Detector does).
type unattributedCounter interface {
	Unattributed() map[string]int
}

// pullEventsWait runs a pull now, waiting for a running one to finish
// first.
func (s *Service) pullEventsWait(ctx context.Context, name string) (pullResult, error) {
	st := s.events
	sem := st.semaphore(name)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return pullResult{}, ctx.Err()
	}
	defer func() { <-sem }()
	st.mu.Lock()
	s.beginRunLocked(name, false)
	st.mu.Unlock()
	res, err := s.pullEventsLocked(ctx, name)
	s.endRun(name, err)
	return res, err
}

// pullEventsLocked pulls every log of the configuration incrementally
// (the caller holds its semaphore), prunes old events and rebuilds the
// score cache. A failing log does not stop the others; the errors are
// joined.
func (s *Service) pullEventsLocked(ctx context.Context, name string) (pullResult, error) {
	var res pullResult
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return res, err
	}
	if err := s.eventsUsable(cfg); err != nil {
		return res, err
	}
	now := s.now().UTC()
	log := s.log.With().Str("component", "events").Str("configuration", name).Logger()
	det, err := s.opts.Detector(cfg.Events, controlsEnabled(cfg))
	var mc Mimecast
	if err == nil {
		mc, err = s.mimecastClient(cfg)
	}
	if err != nil {
		// Say so on every log's status: nothing was pulled.
		for _, kind := range LogKinds {
			cp, cerr := s.store.Checkpoint(ctx, name, kind)
			if cerr != nil {
				break
			}
			cp.Log, cp.LastPull, cp.Error = kind, now, safeMessage(err)
			_ = s.store.PutCheckpoint(ctx, name, cp)
		}
		return res, fmt.Errorf("events of %q: %w", name, err)
	}
	p := &eventPull{s: s, cfg: cfg, det: det, mc: mc, now: now, rules: ruleIndex(det.Rules())}
	// Nudges that failed on an earlier pull go first.
	p.retryNudges(ctx)
	var errs []error
	for _, kind := range LogKinds {
		if err := p.pullLog(ctx, kind); err != nil {
			if ctx.Err() != nil {
				return p.res, ctx.Err()
			}
			log.Warn().Err(err).Str("log", string(kind)).Msg("log pull failed")
			errs = append(errs, fmt.Errorf("%s log: %w", kind, err))
		}
	}
	res = p.res
	if uc, ok := det.(unattributedCounter); ok {
		byRule := uc.Unattributed()
		for _, n := range byRule {
			res.Unattributed += n
		}
		if len(byRule) > 0 {
			ev := log.Info()
			for id, n := range byRule {
				ev = ev.Int(id, n)
			}
			ev.Msg("rule matches without a user address (e.g. DLP bounces) made no event")
		}
	}
	retention := time.Duration(cfg.Events.RetentionDays) * 24 * time.Hour
	if retention <= 0 {
		retention = DefaultRetentionDays * 24 * time.Hour
	}
	pruned, err := s.store.PruneEvents(ctx, name, now.Add(-retention))
	if err != nil {
		errs = append(errs, fmt.Errorf("prune: %w", err))
	}
	res.Pruned = pruned
	// Control additions that failed earlier are retried even when this
	// pull found no new events (a no-op when none is due).
	if ctx.Err() == nil { // a pull cut short by shutdown retries nothing
		s.controlsOnEvents(ctx, cfg, nil)
	}
	if cfg.Events.Scoring {
		if _, err := s.buildScores(ctx, cfg, det, true); err != nil {
			errs = append(errs, fmt.Errorf("score cache: %w", err))
		}
	}
	log.Info().Int("records", res.Records).Int("events", res.Events).Int("rejected", res.Rejected).
		Int("pages", res.Pages).Int("pruned", res.Pruned).Int("nudges", res.Nudges).
		Int("unattributed", res.Unattributed).Msg("event pull finished")
	return res, errors.Join(errs...)
}

// eventPull is one pull of one configuration.
type eventPull struct {
	s     *Service
	cfg   Configuration
	det   Detector
	mc    Mimecast
	now   time.Time
	rules map[string]Rule
	res   pullResult
	// pending are the claimed nudges not delivered yet (see nudge),
	// loaded lazily from the store; pendingOK says they were.
	pending   []pendingNudge
	pendingOK bool
	// nudgeFailing is set once a delivery failed in this pull: the rest
	// of its nudges are deferred to the next pull (kept pending) rather
	// than each waiting on retries against a receiver that is down.
	nudgeFailing bool
}

// pullLog reads one log from its checkpoint (less the overlap) to now,
// oldest first, saving each page's events, rejected records and advanced
// checkpoint in one transaction.
func (p *eventPull) pullLog(ctx context.Context, kind LogKind) error {
	s, name := p.s, p.cfg.Name
	cp, err := s.store.Checkpoint(ctx, name, kind)
	if err != nil {
		return err
	}
	cp.Log = kind
	from := p.now.AddDate(0, 0, -p.cfg.Events.LookbackDays)
	if !cp.Through.IsZero() {
		from = cp.Through.Add(-eventOverlap)
	}
	retention := p.cfg.Events.RetentionDays
	if retention <= 0 {
		retention = DefaultRetentionDays
	}
	if floor := p.now.AddDate(0, 0, -retention); from.Before(floor) {
		from = floor // older events would be pruned at once
	}
	if !from.Before(p.now) {
		from = p.now.Add(-eventOverlap)
	}
	q := LogQuery{From: from, To: p.now, OldestFirst: true, PageSize: p.cfg.Mimecast.PageSize}

	// Fetching and saving overlap: the saver stores pages in order while
	// the next ones are read, so the network and the disk's sync wait on
	// each other less. The queue is short, which bounds memory.
	saved := cp // what the store holds: only the saver writes it
	queue := make(chan pageBatch, saveQueue)
	saverDone := make(chan struct{})
	var saveErr error
	go func() {
		defer close(saverDone)
		saveErr = p.saveLoop(ctx, kind, queue, &saved)
	}()
	fetched := cp
	fetchErr := p.mc.EachLogPage(ctx, kind, q, func(page LogPage) error {
		b := p.classify(kind, page, &fetched, cp.Through)
		select {
		case queue <- b:
			return nil
		case <-saverDone:
			return errSaverStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(queue)
	<-saverDone
	err = fetchErr
	if saveErr != nil {
		err = saveErr
	}
	cp = saved
	cp.LastPull = p.now
	if err != nil {
		if ctx.Err() != nil {
			return err // shutting down: the saved checkpoint stands
		}
		cp.Error = safeMessage(err)
	} else {
		cp.Error = ""
	}
	if perr := s.store.PutCheckpoint(context.WithoutCancel(ctx), name, cp); perr != nil {
		return errors.Join(err, fmt.Errorf("store %s checkpoint: %w", kind, perr))
	}
	return err
}

// Saving pipeline tuning.
const (
	// saveQueue is how many classified pages may wait for the saver.
	saveQueue = 4
	// maxSaveEvents caps the events of one group commit.
	maxSaveEvents = 20000
)

// errSaverStopped tells the fetcher the saver gave up (its error wins).
var errSaverStopped = errors.New("event saver stopped")

// pageBatch is one fetched, classified page waiting to be saved, with the
// checkpoint that is true once it is stored.
type pageBatch struct {
	events   []RiskEvent
	rejected []Rejected
	cp       Checkpoint
	records  int
	pages    int
}

// classify runs the detector over a page and advances prog (the
// checkpoint as far as pages have been read). seen is the checkpoint of
// the previous pull: an unreadable record dated at or before it lies in
// the re-read overlap and was set aside then, so it is not kept twice.
func (p *eventPull) classify(kind LogKind, page LogPage, prog *Checkpoint, seen time.Time) pageBatch {
	b := pageBatch{events: make([]RiskEvent, 0, len(page.Records)/4+1), records: len(page.Records), pages: 1}
	for _, rec := range page.Records {
		prog.Records++
		evs, err := p.det.Detect(kind, rec)
		// A record set aside is handled too: its time, when readable,
		// moves the checkpoint so it is not read again and again.
		var at time.Time
		if len(evs) > 0 {
			at = evs[0].At
		} else if t, ok := logRecordTime(kind, rec); ok {
			at = t
		}
		if err != nil && (at.IsZero() || at.After(seen)) {
			b.rejected = append(b.rejected, rejectRecord(kind, rec, err, p.now))
		}
		if at.After(p.now) {
			at = p.now // a clock ahead of ours must not push the checkpoint past now
		}
		if at.After(prog.Through) {
			prog.Through = at
		}
		b.events = append(b.events, evs...)
	}
	prog.Rejected += len(b.rejected)
	prog.LastPull = p.now
	b.cp = *prog
	return b
}

// saveLoop stores queued pages in order. Each store transaction holds
// pages' events, their rejected records and the checkpoint of the last of
// them, so a crash at any point resumes exactly after what was stored.
// When pages queue up behind a slow disk, the waiting ones are committed
// together (one sync for several pages). After each commit it runs the
// controls and the nudges on the stored events.
func (p *eventPull) saveLoop(ctx context.Context, kind LogKind, queue <-chan pageBatch, saved *Checkpoint) error {
	s, name := p.s, p.cfg.Name
	for b := range queue {
	more:
		for len(b.events) < maxSaveEvents {
			select {
			case nb, ok := <-queue:
				if !ok {
					break more
				}
				b.events = append(b.events, nb.events...)
				b.rejected = append(b.rejected, nb.rejected...)
				b.cp, b.records, b.pages = nb.cp, b.records+nb.records, b.pages+nb.pages
			default:
				break more
			}
		}
		cp := b.cp
		cp.Events = saved.Events
		added, err := s.store.SaveLogPage(ctx, name, b.events, b.rejected, cp)
		if err != nil {
			return err
		}
		cp.Events += added // persisted with the next commit or the final status
		*saved = cp
		p.res.Pages += b.pages
		p.res.Records += b.records
		p.res.Events += added
		p.res.Rejected += len(b.rejected)
		if added > 0 {
			s.m.EventsStored(name, kind, added)
		}
		if len(b.events) > 0 {
			s.controlsOnEvents(ctx, p.cfg, b.events)
			p.nudge(ctx, b.events)
		}
	}
	return nil
}

// safeMessage is what a status may show of err: an *Error's message, never
// the text of an unexpected error (that is logged).
func safeMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return ErrorMessage(err)
	}
	return "internal error (see the server log)"
}

// rejectRecord sets a record aside with why, its raw JSON truncated and
// its message content (subject, details) removed.
func rejectRecord(kind LogKind, rec LogRecord, why error, now time.Time) Rejected {
	clean := make(LogRecord, len(rec))
	for k, v := range rec {
		switch k {
		case "subject", "details":
			clean[k] = "[removed]"
		default:
			clean[k] = v
		}
	}
	raw, err := json.Marshal(clean)
	if err != nil {
		raw = []byte(fmt.Sprintf("%q", "unencodable record"))
	}
	if len(raw) > maxRejectedRecord {
		raw = raw[:maxRejectedRecord]
	}
	return Rejected{Log: kind, At: now, Reason: why.Error(), Record: string(raw)}
}

// logRecordTime reads a record's time for the checkpoint (the detector
// reads it for events): `date` or `eventTime`, Mimecast's layout or RFC 3339.
func logRecordTime(kind LogKind, rec LogRecord) (time.Time, bool) {
	first, second := "date", "eventTime"
	if kind == LogImpersonation || kind == LogDLP {
		first, second = second, first
	}
	for _, f := range []string{first, second} {
		v, _ := rec[f].(string)
		if v == "" {
			continue
		}
		v = strings.TrimSpace(v)
		if t, err := time.Parse("2006-01-02T15:04:05-0700", v); err == nil {
			return t.UTC(), true
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC(), true
		}
		return time.Time{}, false
	}
	return time.Time{}, false
}

func ruleIndex(rules []Rule) map[string]Rule {
	m := make(map[string]Rule, len(rules))
	for _, r := range rules {
		m[r.ID] = r
	}
	return m
}

// effectiveWeight is what an event counts now: its rule's current weight,
// 0 when the rule was disabled or removed since.
func effectiveWeight(rules map[string]Rule, e RiskEvent) float64 {
	r, ok := rules[e.Rule]
	if !ok || !r.Enabled {
		return 0
	}
	return r.Weight
}

// nudgeMessage is the body POSTed to the nudge webhook.
type nudgeMessage struct {
	Type          string            `json:"type"`
	Configuration string            `json:"configuration"`
	User          string            `json:"user"`
	Rule          string            `json:"rule"`
	Title         string            `json:"title"`
	At            time.Time         `json:"at"`
	Evidence      map[string]string `json:"evidence"`
}

// Nudge delivery.
const (
	// nudgePendingKey is the State key of the pending nudge list.
	nudgePendingKey = "events.nudges.pending"
	// maxPendingNudges bounds the pending list; when it is full the
	// oldest entry is given up (and audited).
	maxPendingNudges = 500
	// maxNudgeTries is how many pulls may try one nudge (each pull's try
	// is up to WebhookAttempts requests) before it is given up.
	maxNudgeTries = 10
)

// Nudge audit outcomes: every nudge ends up with exactly one "success"
// or one final "failure"; a failed try that will be retried is a
// "failure" too (detail "retry": "true"); "skipped" is a nudge deferred
// to the next pull because the webhook was failing.
const (
	nudgeSuccess = "success"
	nudgeFailure = "failure"
	nudgeSkipped = "skipped"
)

// pendingNudge is a claimed nudge (its once-a-day key marked) that was not
// delivered yet. The list lives in the store (State nudgePendingKey) and
// is retried at the start of every pull.
type pendingNudge struct {
	Key   string    `json:"key"`
	Event RiskEvent `json:"event"`
	Tries int       `json:"tries"`
}

// nudge sends at most one nudge per user, rule and day (of the event) for
// the page's recent events of rules with Nudge on.
//
// Delivery is retried across pulls: the day's key is claimed with
// MarkOnce (the store's only atomic check-and-set, so a re-read never
// sends twice) and the claimed nudge is saved in the pending list before
// the first attempt. It leaves the list when delivered, when the receiver
// refuses it with a 4xx (it never will accept it), or when it is given up
// (maxNudgeTries pulls, older than nudgeMaxAge, the list full, the rule no
// longer nudging); until then every pull retries it first thing. After a
// failed delivery the rest of the pull's nudges are deferred, not dropped.
// A crash between the claim and saving the list loses that page's new
// nudges; one between a delivery and saving the list sends it again.
// Every outcome is audited (events.nudge: success, failure, skipped).
func (p *eventPull) nudge(ctx context.Context, events []RiskEvent) {
	w := p.cfg.Events.NudgeWebhook
	if w == nil || strings.TrimSpace(w.URL) == "" {
		return
	}
	s, name := p.s, p.cfg.Name
	if !p.loadPending(ctx) {
		return
	}
	var claimed []pendingNudge
	for _, e := range events {
		r, ok := p.rules[e.Rule]
		if !ok || !r.Nudge || !r.Enabled || p.now.Sub(e.At) > nudgeMaxAge {
			continue
		}
		key := "nudge|" + e.Rule + "|" + e.User + "|" + e.At.UTC().Format("2006-01-02")
		if p.isPending(key) || containsNudge(claimed, key) {
			continue // claimed before; retried with the pending ones
		}
		fresh, err := s.store.MarkOnce(ctx, name, key, p.now)
		if err != nil {
			s.log.Warn().Err(err).Str("configuration", name).Msg("nudge: could not claim the nudge; not sent")
			p.auditNudge(ctx, e, nudgeFailure, map[string]string{"error": "could not record the nudge"})
			continue
		}
		if fresh {
			claimed = append(claimed, pendingNudge{Key: key, Event: e})
		}
	}
	if len(claimed) == 0 {
		return
	}
	for _, c := range claimed {
		p.addPending(ctx, c)
	}
	if !p.savePending(ctx) {
		// Without the list saved a failure could not be retried; try
		// anyway, the claim stands.
		s.log.Warn().Str("configuration", name).Msg("nudge: could not save the pending list")
	}
	changed := false
	for _, c := range claimed {
		if p.nudgeFailing {
			p.auditNudge(ctx, c.Event, nudgeSkipped, map[string]string{"reason": "webhook failing; retried on the next pull"})
			continue
		}
		if p.deliver(ctx, *w, c.Key) {
			changed = true
		}
	}
	if changed {
		p.savePending(ctx)
	}
}

// retryNudges tries the pending nudges again, oldest first, at the start
// of a pull.
func (p *eventPull) retryNudges(ctx context.Context) {
	if !p.loadPending(ctx) || len(p.pending) == 0 {
		return
	}
	w := p.cfg.Events.NudgeWebhook
	changed := false
	for _, pn := range append([]pendingNudge(nil), p.pending...) {
		r, ok := p.rules[pn.Event.Rule]
		var why string
		switch {
		case w == nil || strings.TrimSpace(w.URL) == "":
			why = "no nudge webhook configured any more"
		case !ok || !r.Nudge || !r.Enabled:
			why = "the rule no longer nudges"
		case p.now.Sub(pn.Event.At) > nudgeMaxAge:
			why = "not delivered while the event was recent; given up"
		}
		if why != "" {
			p.dropPending(pn.Key)
			p.auditNudge(ctx, pn.Event, nudgeFailure, map[string]string{"error": why, "tries": strconv.Itoa(pn.Tries)})
			changed = true
			continue
		}
		if p.nudgeFailing {
			continue // deferred again; audited when first deferred
		}
		if p.deliver(ctx, *w, pn.Key) {
			changed = true
		}
	}
	if changed {
		p.savePending(ctx)
	}
}

// deliver makes one pull's try of the pending nudge key (up to
// WebhookAttempts requests), audits the outcome and updates the list; it
// reports whether the list changed.
func (p *eventPull) deliver(ctx context.Context, w Webhook, key string) bool {
	i := p.pendingIndex(key)
	if i < 0 {
		return false
	}
	pn := &p.pending[i]
	e := pn.Event
	r := p.rules[e.Rule]
	title := r.Title
	if title == "" {
		title = r.ID
	}
	msg := nudgeMessage{Type: "nudge", Configuration: p.cfg.Name, User: e.User, Rule: e.Rule, Title: title, At: e.At, Evidence: e.Evidence}
	err := p.s.sendWebhook(ctx, w, msg)
	pn.Tries++
	tries := strconv.Itoa(pn.Tries)
	switch {
	case err == nil:
		p.res.Nudges++
		p.dropPending(key)
		p.auditNudge(ctx, e, nudgeSuccess, map[string]string{"tries": tries})
	case ErrorCode(err) == EINVALID || pn.Tries >= maxNudgeTries:
		// A 4xx will never be accepted; a nudge failing this long is
		// given up.
		p.dropPending(key)
		p.auditNudge(ctx, e, nudgeFailure, map[string]string{"error": ErrorMessage(err), "tries": tries})
		if ErrorCode(err) != EINVALID {
			p.nudgeFailing = true
		}
	default:
		p.nudgeFailing = true
		p.auditNudge(ctx, e, nudgeFailure, map[string]string{"error": ErrorMessage(err), "tries": tries, "retry": "true"})
	}
	return true
}

func (p *eventPull) auditNudge(ctx context.Context, e RiskEvent, outcome string, detail map[string]string) {
	d := map[string]string{"rule": e.Rule, "user": e.User, "event": e.ID}
	if w := p.cfg.Events.NudgeWebhook; w != nil && w.URL != "" {
		d["webhook"] = webhookHost(w.URL)
	}
	for k, v := range detail {
		d[k] = v
	}
	_ = p.s.audit(context.WithoutCancel(ctx), AuditEntry{
		Actor: "system", Action: AuditNudge, Target: p.cfg.Name, Outcome: outcome, Detail: d,
	})
}

// loadPending reads the pending list once per pull; false when it cannot
// be read (nothing is claimed then, so nothing is lost).
func (p *eventPull) loadPending(ctx context.Context) bool {
	if p.pendingOK {
		return true
	}
	b, err := p.s.store.State(ctx, p.cfg.Name, nudgePendingKey)
	if err != nil {
		p.s.log.Warn().Err(err).Str("configuration", p.cfg.Name).Msg("nudge: could not read the pending list")
		return false
	}
	p.pending = nil
	if len(b) > 0 {
		if err := json.Unmarshal(b, &p.pending); err != nil {
			p.s.log.Warn().Err(err).Str("configuration", p.cfg.Name).Msg("nudge: unreadable pending list dropped")
			p.pending = nil
		}
	}
	p.pendingOK = true
	return true
}

func (p *eventPull) savePending(ctx context.Context) bool {
	b, err := json.Marshal(p.pending)
	if err == nil {
		err = p.s.store.PutState(context.WithoutCancel(ctx), p.cfg.Name, nudgePendingKey, b)
	}
	if err != nil {
		p.s.log.Warn().Err(err).Str("configuration", p.cfg.Name).Msg("nudge: could not save the pending list")
		return false
	}
	return true
}

// addPending appends a claimed nudge, giving up the oldest when full.
func (p *eventPull) addPending(ctx context.Context, n pendingNudge) {
	for len(p.pending) >= maxPendingNudges {
		old := p.pending[0]
		p.pending = p.pending[1:]
		p.auditNudge(ctx, old.Event, nudgeFailure, map[string]string{"error": "too many undelivered nudges; the oldest was given up", "tries": strconv.Itoa(old.Tries)})
	}
	p.pending = append(p.pending, n)
}

func (p *eventPull) pendingIndex(key string) int {
	for i := range p.pending {
		if p.pending[i].Key == key {
			return i
		}
	}
	return -1
}

func (p *eventPull) isPending(key string) bool { return p.pendingIndex(key) >= 0 }

func (p *eventPull) dropPending(key string) {
	if i := p.pendingIndex(key); i >= 0 {
		p.pending = append(p.pending[:i:i], p.pending[i+1:]...)
	}
}

func containsNudge(list []pendingNudge, key string) bool {
	for _, n := range list {
		if n.Key == key {
			return true
		}
	}
	return false
}

// EventsStatus returns each log's checkpoint: how far it was pulled, the
// last pull, counts, records set aside and the last error. Checkpoints
// advance page by page while a pull runs; EventsPullState tells whether
// one is running. ENOTFOUND.
func (s *Service) EventsStatus(ctx context.Context, name string) ([]Checkpoint, error) {
	if _, err := s.configuration(ctx, name); err != nil {
		return nil, err
	}
	out := make([]Checkpoint, 0, len(LogKinds))
	for _, kind := range LogKinds {
		cp, err := s.store.Checkpoint(ctx, name, kind)
		if err != nil {
			return nil, err
		}
		cp.Log = kind
		out = append(out, cp)
	}
	return out, nil
}

// Events returns the configuration's stored events matching f, newest
// first, and the cursor of the next page. Limit defaults to 100 and is
// capped at 1000. ENOTFOUND, EINVALID for a bad cursor.
func (s *Service) Events(ctx context.Context, name string, f EventFilter) ([]RiskEvent, string, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return nil, "", err
	}
	if f.Rule = strings.TrimSpace(f.Rule); f.Rule != "" {
		if err := s.checkRule(cfg, f.Rule); err != nil {
			return nil, "", err
		}
	}
	switch {
	case f.Limit <= 0:
		f.Limit = DefaultEventsLimit
	case f.Limit > MaxEventsLimit:
		f.Limit = MaxEventsLimit
	}
	f.User = NormalizeEmail(f.User)
	f.Rule = strings.TrimSpace(f.Rule)
	evs, next, err := s.store.Events(ctx, name, f)
	if err != nil {
		return nil, "", err
	}
	if evs == nil {
		evs = []RiskEvent{}
	}
	return evs, next, nil
}

// UserDetail explains one user's score: the grade, its score, and every
// stored event with its current weight (0 when its rule is now off), its
// decayed contribution and its evidence, newest first. Without event
// scoring Score is the grade score and contributions are 0. A user with
// events but no scored grade has Score 0 (not scored). ENOTFOUND for an
// unknown configuration or a user with neither a grade nor events.
func (s *Service) UserDetail(ctx context.Context, name, uid string) (UserDetail, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return UserDetail{}, err
	}
	uid = NormalizeEmail(uid)
	if uid == "" {
		return UserDetail{}, FieldError("uid", "is required")
	}
	u, gradeScore, scored, err := s.lookupUser(ctx, cfg, uid)
	if err != nil {
		return UserDetail{}, err
	}
	evs, err := s.store.UserEvents(ctx, name, uid)
	if err != nil {
		return UserDetail{}, err
	}
	if u.Email == "" && len(evs) == 0 {
		return UserDetail{}, Errorf(ENOTFOUND, "user %s not found in configuration %q", uid, name)
	}
	d := UserDetail{UID: uid, Name: u.Name, Department: u.Department, Events: make([]EventContribution, 0, len(evs))}
	if g, ok := scoring.NormalizeGrade(u.Risk); ok {
		d.Grade = g
	} else {
		d.Grade = strings.TrimSpace(u.Risk)
	}
	if scored {
		d.GradeScore, d.Score = gradeScore, gradeScore
	}
	d.Components = components(u)
	rules := map[string]Rule{}
	if s.opts.Detector != nil {
		if det, err := s.opts.Detector(cfg.Events, controlsEnabled(cfg)); err == nil {
			rules = ruleIndex(det.Rules())
		}
	}
	scoringOn := eventsEnabled(cfg) && cfg.Events.Scoring
	var half time.Duration
	if cfg.Events != nil {
		half = time.Duration(cfg.Events.HalfLife)
	}
	now := s.now()
	contribs := make([]float64, 0, len(evs))
	for _, e := range evs {
		w := effectiveWeight(rules, e)
		c := 0.0
		if scoringOn {
			c = scoring.Decay(w, now.Sub(e.At), half)
			contribs = append(contribs, c)
		}
		d.Events = append(d.Events, EventContribution{
			ID: e.ID, Rule: e.Rule, At: e.At, Weight: w, Contribution: round2(c), Evidence: e.Evidence,
		})
	}
	if scored && scoringOn {
		d.Score = scoring.Apply(gradeScore, contribs...)
	}
	return d, nil
}

func round2(v float64) float64 {
	return float64(int64(v*100+0.5)) / 100
}

func components(u UserGrade) map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{
		"risk": u.Risk, "humanError": u.HumanError, "sentiment": u.Sentiment,
		"engagement": u.Engagement, "knowledge": u.Knowledge,
	} {
		if v = strings.TrimSpace(v); v != "" {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// Targets lists the users a rule matched since the window (default 30
// days), most matches first, with their count and last match: a campaign
// target list. EINVALID for an unknown rule or a negative window, ENOTFOUND.
func (s *Service) Targets(ctx context.Context, name, rule string, since time.Duration) (Targets, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return Targets{}, err
	}
	rule = strings.TrimSpace(rule)
	if rule == "" {
		return Targets{}, FieldError("rule", "is required")
	}
	if since < 0 {
		return Targets{}, FieldError("since", "must not be negative")
	}
	if since == 0 {
		since = DefaultTargetsSince
	}
	if err := s.checkRule(cfg, rule); err != nil {
		return Targets{}, err
	}
	byUser := map[string]*TargetUser{}
	f := EventFilter{Rule: rule, Since: s.now().Add(-since), Limit: scanPage}
	for {
		evs, next, err := s.store.Events(ctx, name, f)
		if err != nil {
			return Targets{}, err
		}
		for _, e := range evs {
			t := byUser[e.User]
			if t == nil {
				t = &TargetUser{UID: e.User}
				byUser[e.User] = t
			}
			t.Count++
			if e.At.After(t.LastAt) {
				t.LastAt = e.At
			}
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	out := Targets{Rule: rule, Since: formatSince(since), Users: make([]TargetUser, 0, len(byUser))}
	for _, t := range byUser {
		out.Users = append(out.Users, *t)
	}
	sortTargets(out.Users)
	return out, nil
}

func sortTargets(us []TargetUser) {
	less := func(a, b TargetUser) bool {
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if !a.LastAt.Equal(b.LastAt) {
			return a.LastAt.After(b.LastAt)
		}
		return a.UID < b.UID
	}
	sort.Slice(us, func(i, j int) bool { return less(us[i], us[j]) })
}

// formatSince writes a window as "30d" when it is whole days.
func formatSince(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	// An RFC 3339 "since" arrives as an age with nanoseconds; a second is
	// precision enough to echo.
	return d.Round(time.Second).String()
}

// checkRule refuses a rule id the configuration's rule set does not know
// (EINVALID naming "rule"); a rule that exists but is turned off is known.
func (s *Service) checkRule(cfg Configuration, rule string) error {
	if s.opts.Detector == nil {
		return Errorf(EINVALID, "events are not available on this server")
	}
	det, err := s.opts.Detector(cfg.Events, controlsEnabled(cfg))
	if err != nil {
		return err
	}
	if _, ok := ruleIndex(det.Rules())[rule]; !ok {
		return FieldError("rule", "unknown rule %q", rule)
	}
	return nil
}
