package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Evidence-based controls: internal senders involved in an outbound event
// of an enabled type are made members of that type's target group (an
// Okta group or a Mimecast profile group), once. Controls never remove
// anyone: taking a user out of a target group is a manual, deliberate act.

// Controls constants.
const (
	// ControlsActor is the audit actor of the controls.
	ControlsActor = "controls"
	// ControlsAddAction is the audit action of one addition.
	ControlsAddAction = "controls.add"
	// ScopeCacheTTL is how long the scope groups' members are reused.
	ScopeCacheTTL = 5 * time.Minute
	// MaxControlErrors is how many recent errors the status keeps.
	MaxControlErrors = 10
	// controlsStateKey holds the status, controlsLedgerKey the additions
	// already made (so later runs make no membership call for them).
	controlsStateKey  = "controls"
	controlsLedgerKey = "controls.added"
	// controlsPendingKey holds the additions that failed and wait for a
	// retry (pendingControls).
	controlsPendingKey = "controls.pending"
	// MaxPendingControls bounds the additions waiting for a retry; beyond
	// it the oldest are dropped (and counted as dropped).
	MaxPendingControls = 10000
	// MaxControlAttempts is how many definitive failures (user or group
	// not found, Mimecast refusing the address) an addition gets before it
	// is given up (audited as failed). Outages (Okta or Mimecast down,
	// refusing the credentials, rate limiting) do not count.
	MaxControlAttempts = 5
	// ControlRetryDelay is how long a failed addition waits before it is
	// tried again by a run without a new event for it (a new event for the
	// same user and type tries it at once).
	ControlRetryDelay = time.Minute
)

// Outcomes counted by the controls status.
const (
	ControlAdded             = "added"
	ControlAlreadyMember     = "already_member"
	ControlSkippedExternal   = "skipped_external"
	ControlSkippedInbound    = "skipped_inbound"
	ControlSkippedOutOfScope = "skipped_out_of_scope"
	ControlSkippedDisabled   = "skipped_disabled"
	ControlFailed            = "failed"
	// ControlDropped counts additions given up: after MaxControlAttempts
	// definitive failures, or the oldest when more than
	// MaxPendingControls wait.
	ControlDropped = "dropped"
	// ControlPending is not cumulative: the additions waiting for a retry
	// after the last run.
	ControlPending          = "pending"
	controlProviderOkta     = "okta"
	controlProviderMimecast = "mimecast"
)

// ControlOutcomes lists every outcome the status counts.
var ControlOutcomes = []string{ControlAdded, ControlAlreadyMember, ControlSkippedExternal, ControlSkippedInbound,
	ControlSkippedOutOfScope, ControlSkippedDisabled, ControlFailed, ControlDropped, ControlPending}

// controlState is the controls' memory: Okta clients per configuration,
// scope members, and one lock per configuration so runs do not overlap.
type controlState struct {
	mu    sync.Mutex
	okta  map[string]oktaEntry
	scope map[string]scopeEntry
	runs  map[string]*sync.Mutex
	// maxPending is MaxPendingControls (tests lower it).
	maxPending int
}

type oktaEntry struct {
	sum    [32]byte
	client Okta
}

type scopeEntry struct {
	key     string
	at      time.Time
	emails  map[string]bool
	domains map[string]bool
}

func newControlState() *controlState {
	return &controlState{okta: map[string]oktaEntry{}, scope: map[string]scopeEntry{}, runs: map[string]*sync.Mutex{}, maxPending: MaxPendingControls}
}

func (st *controlState) lock(name string) func() {
	st.mu.Lock()
	m := st.runs[name]
	if m == nil {
		m = &sync.Mutex{}
		st.runs[name] = m
	}
	st.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// oktaClient returns the configuration's Okta client, built once per set
// of settings.
func (s *Service) oktaClient(cfg Configuration) (Okta, error) {
	k := cfg.Controls
	if k == nil || k.Okta == nil {
		return nil, FieldError("controls.okta", "is required when a target is an Okta group")
	}
	if s.opts.Okta == nil {
		return nil, Errorf(EINVALID, "Okta is not available on this server")
	}
	o := *k.Okta
	sum := sha256.Sum256([]byte(strings.Join([]string{o.BaseURL, o.ClientID, o.PrivateKey, o.KeyID, fmt.Sprint(o.DPoP)}, "\x00")))
	st := s.ctrls
	st.mu.Lock()
	e, ok := st.okta[cfg.Name]
	st.mu.Unlock()
	if ok && e.sum == sum {
		return e.client, nil
	}
	c, err := s.opts.Okta(o)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, Errorf(EINTERNAL, "no Okta client")
	}
	st.mu.Lock()
	st.okta[cfg.Name] = oktaEntry{sum: sum, client: c}
	st.mu.Unlock()
	return c, nil
}

// controlJob is one sender to add to one event type's target group.
type controlJob struct {
	typ    string
	user   string
	key    string
	target ControlTarget
	ev     RiskEvent
	// pend is the stored retry this job comes from (nil for a new event).
	pend *pendingControl
}

// pendingControl is an addition that failed and waits for a retry, kept
// in the store under controlsPendingKey with the event that caused it
// (its evidence goes to the audit entry when it finally succeeds).
type pendingControl struct {
	Type  string    `json:"type"`
	User  string    `json:"user"`
	Event RiskEvent `json:"event"`
	// Target is the group at the time of the failure (for the record: a
	// retry uses the configuration's current target for Type).
	Target ControlTarget `json:"target"`
	// Unscoped is set when the scope groups could not be read: the retry
	// checks the scope first.
	Unscoped bool `json:"unscoped,omitempty"`
	// Attempts counts definitive failures (see MaxControlAttempts).
	Attempts  int       `json:"attempts"`
	Since     time.Time `json:"since"`
	NextAt    time.Time `json:"next_at"`
	LastError string    `json:"last_error,omitempty"`
}

func (p pendingControl) key() string { return "control|" + p.Type + "|" + p.User }

// controlRun is one controlsOnEvents call.
type controlRun struct {
	s      *Service
	cfg    Configuration
	now    time.Time
	counts map[string]int
	errs   []string
	ledger map[string]time.Time
	dirty  bool
	mc     Mimecast
	mcErr  error
	scope  *scopeEntry
	scErr  error
	// pending is the stored retries; requeued the failed jobs of this run
	// (new or retried), both written back by savePending.
	pending      []pendingControl
	pendingDirty bool
	requeued     []pendingControl
	givenUp      []pendingControl
}

// controlsOnEvents acts on a stored page of events for cfg's controls
// (called by the event pull after each saved page). For each event of a
// control type with a target, outbound, whose sender is internal and in
// scope, the sender is made a member of the target group once per
// (event type, user): the mark is set only after a successful addition.
// A failed addition is kept in the store (pendingControls) and tried again
// by every later run once ControlRetryDelay has passed, or at once when a
// new event names the same user and type, until it succeeds or is given
// up. A run with no event of a control type still retries what is due.
// With no scope groups every internal sender is in scope. Outcomes are
// counted in the controls status (cumulative), each addition is audited
// and notified.
func (s *Service) controlsOnEvents(ctx context.Context, cfg Configuration, events []RiskEvent) {
	if !controlsEnabled(cfg) {
		return
	}
	relevant := false
	for _, ev := range events {
		if contains(ControlEventTypes, ev.Rule) {
			relevant = true
			break
		}
	}
	r := &controlRun{s: s, cfg: cfg, now: s.now().UTC(), counts: map[string]int{}}
	if !relevant {
		// Pages of the other logs are saved meanwhile: without a control
		// event and with no retry due, do not wait for their runs.
		if r.pending = s.loadPending(ctx, cfg.Name); !r.anyDue() {
			return
		}
	}
	defer s.ctrls.lock(cfg.Name)()
	r.now = s.now().UTC() // the lock may have been waited for
	r.pending = s.loadPending(ctx, cfg.Name)
	if !relevant && !r.anyDue() {
		return
	}
	r.ledger = s.loadLedger(ctx, cfg.Name)
	jobs := r.retries(ctx, r.classify(ctx, events))
	r.runOkta(ctx, jobs)
	r.runMimecast(ctx, jobs)
	if r.dirty {
		if b, err := json.Marshal(r.ledger); err == nil {
			if err := s.store.PutState(context.WithoutCancel(ctx), cfg.Name, controlsLedgerKey, b); err != nil {
				s.log.Warn().Err(err).Str("configuration", cfg.Name).Msg("controls: could not save the ledger")
			}
		}
	}
	r.savePending(ctx)
	s.saveControlsStatus(ctx, cfg.Name, r)
}

// anyDue reports whether a stored retry is due.
func (r *controlRun) anyDue() bool {
	for _, p := range r.pending {
		if !r.now.Before(p.NextAt) {
			return true
		}
	}
	return false
}

// retries puts the due stored retries (and those a new event names, the
// new job giving way to the stored one, which keeps the first evidence)
// before the new jobs. Retries whose addition was made meanwhile, whose
// type has no target any more or whose sender turns out to be out of
// scope leave the queue.
func (r *controlRun) retries(ctx context.Context, fresh []controlJob) []controlJob {
	if len(r.pending) == 0 {
		return fresh
	}
	byKey := map[string]int{}
	for i, j := range fresh {
		byKey[j.key] = i
	}
	taken := map[int]bool{}
	var jobs []controlJob
	kept := r.pending[:0:0]
	for i := range r.pending {
		p := r.pending[i]
		key := p.key()
		if _, done := r.ledger[key]; done {
			r.pendingDirty = true
			continue
		}
		t, ok := r.cfg.Controls.Targets[p.Type]
		if !ok || (t.OktaGroup == "" && t.MimecastGroup == "") {
			r.pendingDirty = true
			r.counts[ControlSkippedDisabled]++
			continue
		}
		idx, named := byKey[key]
		if !named && r.now.Before(p.NextAt) {
			kept = append(kept, p)
			continue
		}
		r.pendingDirty = true
		if named {
			taken[idx] = true
		}
		j := controlJob{typ: p.Type, user: p.User, key: key, target: t, ev: p.Event, pend: &p}
		// The configuration may have changed since the failure: a retry
		// must still be of an internal sender in scope today.
		if !internalAddress(p.User, r.cfg.Controls.InternalDomains) {
			r.counts[ControlSkippedExternal]++
			continue
		}
		in, err := r.inScope(ctx, p.User)
		if err != nil {
			r.failJob(j, "scope groups", err)
			continue
		}
		if !in {
			r.counts[ControlSkippedOutOfScope]++
			continue
		}
		p.Unscoped = false
		jobs = append(jobs, j)
	}
	r.pending = kept
	for i, j := range fresh {
		if !taken[i] {
			jobs = append(jobs, j)
		}
	}
	return jobs
}

// classify counts the events the controls skip and returns the jobs, one
// per (event type, user) not yet done.
func (r *controlRun) classify(ctx context.Context, events []RiskEvent) []controlJob {
	k := r.cfg.Controls
	var jobs []controlJob
	queued := map[string]bool{}
	ids := map[string]bool{}
	for _, ev := range events {
		if !contains(ControlEventTypes, ev.Rule) {
			continue
		}
		// Several rows of one message (DLP hold + notification) are one event.
		if ev.ID != "" {
			if ids[ev.ID] {
				continue
			}
			ids[ev.ID] = true
		}
		t, ok := k.Targets[ev.Rule]
		if !ok || (t.OktaGroup == "" && t.MimecastGroup == "") {
			r.counts[ControlSkippedDisabled]++
			continue
		}
		if !strings.EqualFold(strings.TrimSpace(ev.Route), "outbound") {
			r.counts[ControlSkippedInbound]++
			continue
		}
		user := NormalizeEmail(ev.User)
		if !internalAddress(user, k.InternalDomains) {
			r.counts[ControlSkippedExternal]++
			continue
		}
		key := "control|" + ev.Rule + "|" + user
		if _, done := r.ledger[key]; done || queued[key] {
			r.counts[ControlAlreadyMember]++
			continue
		}
		j := controlJob{typ: ev.Rule, user: user, key: key, target: t, ev: ev}
		in, err := r.inScope(ctx, user)
		if err != nil {
			// Kept for a retry that checks the scope first.
			queued[key] = true
			j.pend = &pendingControl{Type: j.typ, User: user, Event: ev, Target: t, Unscoped: true, Since: r.now}
			r.failJob(j, "scope groups", err)
			continue
		}
		if !in {
			r.counts[ControlSkippedOutOfScope]++
			continue
		}
		queued[key] = true
		jobs = append(jobs, j)
	}
	return jobs
}

// internalAddress reports whether addr's domain is one of domains
// (case-insensitive, exact: subdomains must be listed themselves).
func internalAddress(addr string, domains []string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return false
	}
	d := addr[at+1:]
	for _, x := range domains {
		if strings.EqualFold(strings.TrimSpace(x), d) {
			return true
		}
	}
	return false
}

func (r *controlRun) mimecast() (Mimecast, error) {
	if r.mc == nil && r.mcErr == nil {
		r.mc, r.mcErr = r.s.mimecastClient(r.cfg)
	}
	return r.mc, r.mcErr
}

// inScope reports whether user is a member of one of the scope groups
// (true for everyone when there are none). Members are cached for
// ScopeCacheTTL; a failure to resolve the scope fails the run's jobs.
func (r *controlRun) inScope(ctx context.Context, user string) (bool, error) {
	groups := r.cfg.Controls.ScopeGroups
	if len(groups) == 0 {
		return true, nil
	}
	if r.scope == nil && r.scErr == nil {
		r.scope, r.scErr = r.s.scopeMembers(ctx, r.cfg, r.mimecast)
	}
	if r.scErr != nil {
		return false, r.scErr
	}
	if r.scope.emails[user] {
		return true, nil
	}
	if at := strings.LastIndexByte(user, '@'); at >= 0 && r.scope.domains[user[at+1:]] {
		return true, nil
	}
	return false, nil
}

// scopeMembers returns the scope groups' members, from the cache when it
// is fresh and for the same groups.
func (s *Service) scopeMembers(ctx context.Context, cfg Configuration, mcf func() (Mimecast, error)) (*scopeEntry, error) {
	key := strings.ToLower(strings.Join(cfg.Controls.ScopeGroups, "\x00"))
	now := s.now()
	st := s.ctrls
	st.mu.Lock()
	e, ok := st.scope[cfg.Name]
	st.mu.Unlock()
	if ok && e.key == key && now.Sub(e.at) >= 0 && now.Sub(e.at) < ScopeCacheTTL {
		return &e, nil
	}
	mc, err := mcf()
	if err != nil {
		return nil, err
	}
	e = scopeEntry{key: key, at: now, emails: map[string]bool{}, domains: map[string]bool{}}
	for _, name := range cfg.Controls.ScopeGroups {
		g, err := s.mimecastGroup(ctx, cfg, name)
		if err != nil {
			return nil, err
		}
		members, err := mc.GroupMembers(ctx, g.ID)
		if err != nil {
			return nil, fmt.Errorf("members of Mimecast group %q: %w", g.Name, err)
		}
		for _, m := range members {
			m = NormalizeEmail(m)
			if strings.HasPrefix(m, "@") {
				e.domains[m[1:]] = true
			} else if m != "" {
				e.emails[m] = true
			}
		}
	}
	st.mu.Lock()
	st.scope[cfg.Name] = e
	st.mu.Unlock()
	return &e, nil
}

// mimecastGroup resolves a Mimecast group by id or exact
// (case-insensitive) name from the cached group list.
func (s *Service) mimecastGroup(ctx context.Context, cfg Configuration, idOrName string) (Group, error) {
	groups, err := s.groupsOf(ctx, cfg)
	if err != nil {
		return Group{}, err
	}
	return resolveMimecastGroup(groups, idOrName)
}

// resolveMimecastGroup finds a group of the list by id or exact
// (case-insensitive) name: ENOTFOUND, or ECONFLICT when several groups
// have the name.
func resolveMimecastGroup(groups []Group, idOrName string) (Group, error) {
	want := strings.TrimSpace(idOrName)
	for _, g := range groups {
		if g.ID == want {
			return g, nil
		}
	}
	var found []Group
	for _, g := range groups {
		if strings.EqualFold(g.Name, want) {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return Group{}, Errorf(ENOTFOUND, "Mimecast group %q not found", want)
	case 1:
		return found[0], nil
	}
	return Group{}, Errorf(ECONFLICT, "%d Mimecast groups are named %q: use the group id", len(found), want)
}

// runOkta adds the Okta jobs' senders: one user lookup and one PUT each.
func (r *controlRun) runOkta(ctx context.Context, jobs []controlJob) {
	var okJobs []controlJob
	for _, j := range jobs {
		if j.target.OktaGroup != "" {
			okJobs = append(okJobs, j)
		}
	}
	if len(okJobs) == 0 {
		return
	}
	client, err := r.s.oktaClient(r.cfg)
	if err != nil {
		for _, j := range okJobs {
			r.failJob(j, "Okta", err)
		}
		return
	}
	groups := map[string]Group{}
	groupErrs := map[string]error{}
	// Once Okta is down, refusing us or rate-limiting, the run's other
	// senders are not tried (each would wait out its own retries); they
	// are tried again with their next event.
	var down error
	for _, j := range okJobs {
		if ctx.Err() != nil {
			r.failJob(j, "", Errorf(EUNAVAILABLE, "cancelled"))
			continue
		}
		if down != nil {
			r.failJob(j, "not tried, Okta failed earlier in this run", down)
			continue
		}
		name := j.target.OktaGroup
		g, ok := groups[name]
		if !ok && groupErrs[name] == nil {
			g, err = client.FindGroup(ctx, name)
			if err != nil {
				groupErrs[name] = err
			} else {
				groups[name] = g
			}
		}
		if err := groupErrs[name]; err != nil {
			r.failJob(j, fmt.Sprintf("Okta group %q", name), err)
			if oktaDown(err) {
				down = err
			}
			continue
		}
		uid, err := client.FindUser(ctx, j.user)
		if err == nil {
			err = client.AddUserToGroup(ctx, g.ID, uid)
		}
		if err != nil {
			r.failJob(j, "Okta", err)
			if oktaDown(err) {
				down = err
			}
			continue
		}
		r.done(ctx, j, controlProviderOkta, g, ControlAdded)
	}
}

// oktaDown tells errors that concern Okta as a whole from those of one
// user or group.
func oktaDown(err error) bool {
	switch ErrorCode(err) {
	case EUNAVAILABLE, EUPSTREAMAUTH, ERATELIMITED, EINTERNAL:
		return true
	}
	return false
}

// runMimecast adds the Mimecast jobs' senders, one AddMembers call per
// target group (the client batches).
func (r *controlRun) runMimecast(ctx context.Context, jobs []controlJob) {
	byGroup := map[string][]controlJob{}
	var order []string
	for _, j := range jobs {
		if g := j.target.MimecastGroup; g != "" {
			if _, ok := byGroup[g]; !ok {
				order = append(order, g)
			}
			byGroup[g] = append(byGroup[g], j)
		}
	}
	for _, name := range order {
		js := byGroup[name]
		failAll := func(prefix string, err error) {
			for _, j := range js {
				r.failJob(j, prefix, err)
			}
		}
		mc, err := r.mimecast()
		if err != nil {
			failAll("Mimecast", err)
			continue
		}
		g, err := r.s.mimecastGroup(ctx, r.cfg, name)
		if err != nil {
			failAll("Mimecast group", err)
			continue
		}
		// One address per user, though several event types may name it.
		var emails []string
		seen := map[string]bool{}
		for _, j := range js {
			if !seen[j.user] {
				seen[j.user] = true
				emails = append(emails, j.user)
			}
		}
		// On an error the client still returns the results of the batches
		// it completed: those are recorded, only the rest fail.
		results, addErr := mc.AddMembers(ctx, g.ID, emails)
		byEmail := map[string]MemberResult{}
		for _, res := range results {
			byEmail[NormalizeEmail(res.Email)] = res
		}
		for _, j := range js {
			res, ok := byEmail[j.user]
			switch {
			case !ok && addErr != nil:
				r.failJob(j, fmt.Sprintf("Mimecast group %q", g.Name), addErr)
			case !ok:
				r.failJob(j, "", Errorf(EUNAVAILABLE, "Mimecast sent no result for the address"))
			case res.Status == Done:
				r.done(ctx, j, controlProviderMimecast, g, ControlAdded)
			case res.Status == Skipped:
				r.done(ctx, j, controlProviderMimecast, g, ControlAlreadyMember)
			default:
				reason := res.Reason
				if reason == "" {
					reason = res.Code
				}
				// A per-address refusal (a Mimecast error code for the item) is
				// definitive and counts toward MaxControlAttempts; an item
				// without a code (no result) is transient.
				code := EUNAVAILABLE
				if res.Code != "" {
					code = EINVALID
				}
				r.failJob(j, "", Errorf(code, "Mimecast refused the addition to %q: %s", g.Name, reason))
			}
		}
	}
}

// done records a successful addition (or one Mimecast found already
// made): the once-mark, the ledger, the count, and for a real addition
// the audit entry and the notification.
func (r *controlRun) done(ctx context.Context, j controlJob, provider string, g Group, outcome string) {
	s := r.s
	fresh, err := s.store.MarkOnce(context.WithoutCancel(ctx), r.cfg.Name, j.key, r.now)
	if err != nil {
		// The member was added; the ledger keeps the next run from adding
		// again and MarkOnce is tried once more then.
		s.log.Warn().Err(err).Str("configuration", r.cfg.Name).Str("key", j.key).Msg("controls: could not mark an addition")
		fresh = true
	} else {
		r.ledger[j.key] = r.now
		r.dirty = true
	}
	if !fresh {
		// Another run did it first (its audit entry stands).
		r.counts[ControlAlreadyMember]++
		return
	}
	r.counts[outcome]++
	if outcome != ControlAdded {
		return
	}
	detail := map[string]string{
		"configuration": r.cfg.Name,
		"event_type":    j.typ,
		"provider":      provider,
		"group":         firstNonEmpty(j.target.OktaGroup, j.target.MimecastGroup),
		"group_id":      g.ID,
		"group_name":    g.Name,
		"event_id":      j.ev.ID,
		"rule":          j.ev.Rule,
		"message_id":    j.ev.MessageID,
		"event_at":      j.ev.At.UTC().Format(time.RFC3339),
		"route":         j.ev.Route,
	}
	for k, v := range j.ev.Evidence {
		detail["evidence."+k] = v
	}
	_ = s.audit(ctx, AuditEntry{At: r.now, Actor: ControlsActor, Action: ControlsAddAction, Target: j.user, Outcome: string(Done), Detail: detail})
	if w := r.cfg.Controls.NotifyWebhook; w != nil && w.URL != "" {
		payload := ControlNotification{
			Type: ControlsAddAction, Configuration: r.cfg.Name, At: r.now, User: j.user, EventType: j.typ,
			Provider: provider, Group: g, Event: j.ev,
		}
		if err := s.sendWebhook(ctx, *w, payload); err != nil {
			s.log.Warn().Str("configuration", r.cfg.Name).Str("error", ErrorMessage(err)).Msg("controls: notification failed")
			r.errs = append(r.errs, fmt.Sprintf("%s notify %s: %s", r.now.Format(time.RFC3339), j.user, safeMessage(err)))
		}
	}
}

// ControlNotification is the body POSTed to controls.notify_webhook for
// each addition.
type ControlNotification struct {
	Type          string    `json:"type"`
	Configuration string    `json:"configuration"`
	At            time.Time `json:"at"`
	User          string    `json:"user"`
	EventType     string    `json:"event_type"`
	Provider      string    `json:"provider"`
	Group         Group     `json:"group"`
	Event         RiskEvent `json:"event"`
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// fail counts a failed addition and keeps its caller-safe message, after
// what (the step that failed) when given.
func (r *controlRun) fail(typ, user, what string, err error) {
	r.counts[ControlFailed]++
	msg := safeMessage(err)
	if what != "" {
		msg = what + ": " + msg
	}
	r.errs = append(r.errs, fmt.Sprintf("%s %s %s: %s", r.now.Format(time.RFC3339), typ, user, msg))
	r.s.log.Warn().Str("configuration", r.cfg.Name).Str("event_type", typ).Str("user", user).
		Str("error", msg).Err(err).Msg("controls: addition failed")
}

// loadLedger returns the additions already made ("control|type|user" ->
// when); an unreadable ledger is empty (additions are idempotent and
// MarkOnce keeps the audit to one entry).
func (s *Service) loadLedger(ctx context.Context, name string) map[string]time.Time {
	out := map[string]time.Time{}
	b, err := s.store.State(ctx, name, controlsLedgerKey)
	if err != nil || len(b) == 0 {
		return out
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return map[string]time.Time{}
	}
	return out
}

// saveControlsStatus adds the run's counts and errors to the stored status.
func (s *Service) saveControlsStatus(ctx context.Context, name string, r *controlRun) {
	st := s.readControlsStatus(ctx, name)
	st.LastRun = r.now
	for k, v := range r.counts {
		st.Counts[k] += v
	}
	st.Counts[ControlPending] = len(r.pending) + len(r.requeued)
	// Newest first, at most MaxControlErrors.
	errs := make([]string, 0, MaxControlErrors)
	for i := len(r.errs) - 1; i >= 0 && len(errs) < MaxControlErrors; i-- {
		errs = append(errs, r.errs[i])
	}
	for _, e := range st.LastErrors {
		if len(errs) >= MaxControlErrors {
			break
		}
		errs = append(errs, e)
	}
	st.LastErrors = errs
	b, err := json.Marshal(st)
	if err == nil {
		err = s.store.PutState(context.WithoutCancel(ctx), name, controlsStateKey, b)
	}
	if err != nil {
		s.log.Warn().Err(err).Str("configuration", name).Msg("controls: could not save the status")
	}
}

func (s *Service) readControlsStatus(ctx context.Context, name string) ControlsStatus {
	st := ControlsStatus{Counts: map[string]int{}, LastErrors: []string{}}
	if b, err := s.store.State(ctx, name, controlsStateKey); err == nil && len(b) > 0 {
		_ = json.Unmarshal(b, &st)
	}
	if st.Counts == nil {
		st.Counts = map[string]int{}
	}
	for _, o := range ControlOutcomes {
		st.Counts[o] += 0
	}
	if st.LastErrors == nil {
		st.LastErrors = []string{}
	}
	return st
}

// ControlsStatus returns the controls' last run, cumulative counts per
// outcome and the most recent errors. ENOTFOUND for an unknown
// configuration.
func (s *Service) ControlsStatus(ctx context.Context, name string) (ControlsStatus, error) {
	if _, err := s.configuration(ctx, name); err != nil {
		return ControlsStatus{}, err
	}
	return s.readControlsStatus(ctx, name), nil
}

// ValidateControls checks a configuration's controls against the live
// services: the Okta key and credentials (when a target is an Okta group),
// that every target group and scope group exists, and the local rules
// (scope size, internal domains, events on). ENOTFOUND for an unknown
// configuration; every other problem is a failed check.
func (s *Service) ValidateControls(ctx context.Context, name string) (ControlsValidation, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return ControlsValidation{}, err
	}
	out := ControlsValidation{Checks: []ControlCheck{}}
	k := cfg.Controls
	if k == nil {
		out.Message = "the configuration has no controls section"
		return out, nil
	}
	check := func(name string, err error, okMsg string) {
		c := ControlCheck{Name: name, Success: err == nil, Message: okMsg}
		if err != nil {
			c.Message = safeMessage(err)
		}
		out.Checks = append(out.Checks, c)
	}
	if len(k.ScopeGroups) > MaxScopeGroups {
		check("scope_groups", Errorf(EINVALID, "at most %d groups may be in scope, got %d", MaxScopeGroups, len(k.ScopeGroups)), "")
	} else if len(k.ScopeGroups) == 0 {
		check("scope_groups", nil, "no scope groups: every internal sender is in scope")
	} else {
		check("scope_groups", nil, fmt.Sprintf("%d scope group(s)", len(k.ScopeGroups)))
	}
	if len(k.InternalDomains) == 0 {
		check("internal_domains", Errorf(EINVALID, "at least one internal domain is required"), "")
	} else {
		check("internal_domains", nil, strings.Join(k.InternalDomains, ", "))
	}
	if eventsEnabled(cfg) {
		check("events", nil, "the event pull feeds the controls")
	} else {
		check("events", Errorf(EINVALID, "events must be enabled: the controls act on the events the pull finds"), "")
	}
	types := make([]string, 0, len(k.Targets))
	needOkta := false
	for typ, t := range k.Targets {
		types = append(types, typ)
		needOkta = needOkta || t.OktaGroup != ""
	}
	sort.Strings(types)
	if len(types) == 0 {
		check("targets", Errorf(EINVALID, "no event type has a target group"), "")
	}

	var okta Okta
	oktaReady := false
	if needOkta {
		okta, err = s.oktaClient(cfg)
		check("okta.client", err, "Okta settings and private key are usable")
		if err == nil {
			err = okta.Ping(ctx)
			check("okta.credentials", err, "Okta issued an access token")
			oktaReady = err == nil
		}
	}
	var mcErr error
	if _, mcErr = s.opts.Mimecast(cfg.Mimecast); mcErr != nil {
		check("mimecast.client", mcErr, "")
	}
	for _, typ := range types {
		t := k.Targets[typ]
		name := "target." + typ
		switch {
		case !contains(ControlEventTypes, typ):
			check(name, Errorf(EINVALID, "unknown event type %q", typ), "")
		case t.OktaGroup != "" && !oktaReady:
			check(name, Errorf(EUNAVAILABLE, "not checked: the Okta client is not usable"), "")
		case t.OktaGroup != "":
			g, err := okta.FindGroup(ctx, t.OktaGroup)
			check(name, err, fmt.Sprintf("Okta group %q (%s)", g.Name, g.ID))
		case t.MimecastGroup != "" && mcErr != nil:
			check(name, Errorf(EUNAVAILABLE, "not checked: the Mimecast client is not usable"), "")
		case t.MimecastGroup != "":
			g, err := s.mimecastGroup(ctx, cfg, t.MimecastGroup)
			check(name, err, fmt.Sprintf("Mimecast group %q (%s)", g.Name, g.ID))
		default:
			check(name, Errorf(EINVALID, "names no group"), "")
		}
	}
	for _, sg := range k.ScopeGroups {
		name := "scope_group." + sg
		if mcErr != nil {
			check(name, Errorf(EUNAVAILABLE, "not checked: the Mimecast client is not usable"), "")
			continue
		}
		g, err := s.mimecastGroup(ctx, cfg, sg)
		check(name, err, fmt.Sprintf("Mimecast group %q (%s)", g.Name, g.ID))
	}

	failed := 0
	var first *ControlCheck
	for i := range out.Checks {
		if !out.Checks[i].Success {
			if first == nil {
				first = &out.Checks[i]
			}
			failed++
		}
	}
	out.Success = failed == 0
	if out.Success {
		out.Message = fmt.Sprintf("all %d checks passed", len(out.Checks))
	} else {
		out.Message = fmt.Sprintf("%d of %d checks failed; first: %s: %s", failed, len(out.Checks), first.Name, first.Message)
	}
	return out, nil
}

// checkControlGroups resolves, for a configuration whose controls are
// enabled, every target group (Okta through okta, the client prepare
// built; Mimecast by id or name) and every scope group. A group that does
// not exist, or whose name is ambiguous, is EINVALID naming
// controls.targets.<type> or controls.scope_groups; when Okta or Mimecast
// cannot be reached or refuses the credentials that error is returned
// (EUNAVAILABLE, EUPSTREAMAUTH, ERATELIMITED), so nothing is saved
// unverified. The Mimecast group list is read fresh, not from the cache:
// an update may name another tenant.
func (s *Service) checkControlGroups(ctx context.Context, c Configuration, okta Okta) error {
	k := c.Controls
	if k == nil || !k.Enabled {
		return nil
	}
	types := make([]string, 0, len(k.Targets))
	for typ := range k.Targets {
		types = append(types, typ)
	}
	sort.Strings(types)
	found := map[string]error{} // Okta group -> outcome, one lookup per name
	needMimecast := len(k.ScopeGroups) > 0
	for _, typ := range types {
		t := k.Targets[typ]
		field := "controls.targets." + typ
		if t.MimecastGroup != "" {
			needMimecast = true
		}
		if t.OktaGroup == "" {
			continue
		}
		if okta == nil {
			return FieldError(field, "Okta is not available on this server")
		}
		err, seen := found[t.OktaGroup]
		if !seen {
			_, err = okta.FindGroup(ctx, t.OktaGroup)
			found[t.OktaGroup] = err
		}
		if err != nil {
			return groupCheckError(field, fmt.Sprintf("Okta group %q", t.OktaGroup), err)
		}
	}
	if !needMimecast {
		return nil
	}
	mc, err := s.opts.Mimecast(c.Mimecast)
	if err != nil {
		return err
	}
	groups, err := mc.FindGroups(ctx, "")
	if err != nil {
		return fmt.Errorf("%w: %w", Errorf(ErrorCode(err), "could not list the Mimecast groups to check the controls: %s", ErrorMessage(err)), err)
	}
	for _, typ := range types {
		if g := k.Targets[typ].MimecastGroup; g != "" {
			if _, err := resolveMimecastGroup(groups, g); err != nil {
				return groupCheckError("controls.targets."+typ, fmt.Sprintf("Mimecast group %q", g), err)
			}
		}
	}
	for _, g := range k.ScopeGroups {
		if _, err := resolveMimecastGroup(groups, g); err != nil {
			return groupCheckError("controls.scope_groups", fmt.Sprintf("Mimecast group %q", g), err)
		}
	}
	return nil
}

// groupCheckError makes a failed group lookup a configuration error when
// the group is missing or ambiguous, and keeps the upstream's code
// otherwise (with what was being checked in the message).
func groupCheckError(field, what string, err error) error {
	switch ErrorCode(err) {
	case ENOTFOUND:
		return FieldError(field, "%s not found", what)
	case ECONFLICT, EINVALID:
		return FieldError(field, "%s", ErrorMessage(err))
	}
	return fmt.Errorf("%w: %w", Errorf(ErrorCode(err), "could not check %s (%s): %s", what, field, ErrorMessage(err)), err)
}

// failJob counts a failed addition (fail) and keeps it for a retry: a
// definitive failure (definitiveFailure) counts one attempt, and the
// addition is given up after MaxControlAttempts of them.
func (r *controlRun) failJob(j controlJob, what string, err error) {
	r.fail(j.typ, j.user, what, err)
	p := pendingControl{Type: j.typ, User: j.user, Event: j.ev, Since: r.now}
	if j.pend != nil {
		p = *j.pend
	}
	p.Target = j.target
	msg := safeMessage(err)
	if what != "" {
		msg = what + ": " + msg
	}
	p.LastError = msg
	if definitiveFailure(err) {
		p.Attempts++
	}
	if p.Attempts >= MaxControlAttempts {
		r.givenUp = append(r.givenUp, p)
		r.pendingDirty = true
		return
	}
	p.NextAt = r.now.Add(ControlRetryDelay)
	r.requeued = append(r.requeued, p)
	r.pendingDirty = true
}

// definitiveFailure tells the failures that concern this user or group
// (not found, ambiguous, refused) from outages, which are retried
// without limit.
func definitiveFailure(err error) bool {
	switch ErrorCode(err) {
	case ENOTFOUND, ECONFLICT, EINVALID, EFORBIDDEN:
		return true
	}
	return false
}

// giveUp drops a retry for good: counted, audited as failed with the
// event's evidence, and named in the status' errors.
func (r *controlRun) giveUp(ctx context.Context, p pendingControl) {
	s := r.s
	r.counts[ControlDropped]++
	r.errs = append(r.errs, fmt.Sprintf("%s %s %s: given up after %d attempts: %s", r.now.Format(time.RFC3339), p.Type, p.User, p.Attempts, p.LastError))
	detail := map[string]string{
		"configuration": r.cfg.Name,
		"event_type":    p.Type,
		"group":         firstNonEmpty(p.Target.OktaGroup, p.Target.MimecastGroup),
		"event_id":      p.Event.ID,
		"rule":          p.Event.Rule,
		"message_id":    p.Event.MessageID,
		"event_at":      p.Event.At.UTC().Format(time.RFC3339),
		"route":         p.Event.Route,
		"attempts":      fmt.Sprint(p.Attempts),
		"error":         p.LastError,
	}
	if p.Target.OktaGroup != "" {
		detail["provider"] = controlProviderOkta
	} else {
		detail["provider"] = controlProviderMimecast
	}
	for k, v := range p.Event.Evidence {
		detail["evidence."+k] = v
	}
	_ = s.audit(context.WithoutCancel(ctx), AuditEntry{At: r.now, Actor: ControlsActor, Action: ControlsAddAction, Target: p.User, Outcome: string(Failed), Detail: detail})
	s.log.Warn().Str("configuration", r.cfg.Name).Str("event_type", p.Type).Str("user", p.User).Int("attempts", p.Attempts).
		Str("error", p.LastError).Msg("controls: addition given up")
}

// loadPending returns the stored retries, oldest first; an unreadable
// list is empty (logged).
func (s *Service) loadPending(ctx context.Context, name string) []pendingControl {
	b, err := s.store.State(ctx, name, controlsPendingKey)
	if err != nil || len(b) == 0 {
		return nil
	}
	var out []pendingControl
	if err := json.Unmarshal(b, &out); err != nil {
		s.log.Warn().Err(err).Str("configuration", name).Msg("controls: unreadable retry list dropped")
		return nil
	}
	return out
}

// savePending gives up the run's hopeless additions (giveUp) and writes
// back the retries not due in this run and the run's failures (one per
// user and type, the oldest kept), at most maxPending: beyond it the
// oldest are dropped and counted.
func (r *controlRun) savePending(ctx context.Context) {
	if !r.pendingDirty {
		return
	}
	all := append(r.pending, r.requeued...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Since.Before(all[j].Since) })
	seen := map[string]bool{}
	for _, p := range r.givenUp {
		seen[p.key()] = true
	}
	out := all[:0]
	for _, p := range all {
		if k := p.key(); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	if max := r.s.ctrls.maxPending; len(out) > max {
		n := len(out) - max
		r.counts[ControlDropped] += n
		r.errs = append(r.errs, fmt.Sprintf("%s %d failed additions dropped: more than %d wait for a retry", r.now.Format(time.RFC3339), n, max))
		r.s.log.Warn().Str("configuration", r.cfg.Name).Int("dropped", n).Int("max", max).Msg("controls: retry list full, oldest dropped")
		out = out[n:]
	}
	for _, p := range r.givenUp {
		r.giveUp(ctx, p)
	}
	r.pending, r.requeued, r.givenUp = out, nil, nil
	b, err := json.Marshal(out)
	if err == nil {
		err = r.s.store.PutState(context.WithoutCancel(ctx), r.cfg.Name, controlsPendingKey, b)
	}
	if err != nil {
		r.s.log.Warn().Err(err).Str("configuration", r.cfg.Name).Msg("controls: could not save the retry list")
	}
}
