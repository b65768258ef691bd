package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Action limits and timings.
const (
	// GroupCacheTTL is how long one configuration's group list serves form
	// renders and validations before find-groups is called again.
	GroupCacheTTL = time.Minute
	// IdempotencyTTL is how long an execute-action answer is kept for its
	// Idempotency-Key.
	IdempotencyTTL = 24 * time.Hour
	// MaxGroupNameLength bounds the name of a group to create.
	MaxGroupNameLength = 255
	// MaxIdempotencyKeyLength bounds an Idempotency-Key.
	MaxIdempotencyKeyLength = 255
)

// Messages of per-user results the host produces itself.
const (
	MsgInvalidEmail = "invalid email address"
)

// groupCache is one configuration's group list and when it was fetched.
type groupCache struct {
	at     time.Time
	groups []Group
}

func (h *hostState) dropGroups(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.groups, name)
}

// groupsOf returns the tenant's groups sorted by name, from a cache of at
// most GroupCacheTTL or from one find-groups pull (all pages).
func (s *Service) groupsOf(ctx context.Context, cfg Configuration) ([]Group, error) {
	h := s.host
	now := s.now()
	h.mu.Lock()
	c, ok := h.groups[cfg.Name]
	h.mu.Unlock()
	if ok && now.Sub(c.at) < GroupCacheTTL && now.Sub(c.at) >= 0 {
		return c.groups, nil
	}
	mc, err := s.mimecastClient(cfg)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	gen := h.gen[cfg.Name]
	h.mu.Unlock()
	gs, err := mc.FindGroups(ctx, "")
	if err != nil {
		return nil, err
	}
	gs = append([]Group(nil), gs...)
	sort.SliceStable(gs, func(i, j int) bool { return strings.ToLower(gs[i].Name) < strings.ToLower(gs[j].Name) })
	h.mu.Lock()
	if h.gen[cfg.Name] == gen {
		h.groups[cfg.Name] = groupCache{at: now, groups: gs}
	}
	h.mu.Unlock()
	return gs, nil
}

// Actions lists the actions the plugin offers.
func (s *Service) Actions() []ActionOption {
	return []ActionOption{
		{Label: "Add to Group", Value: ActionAdd},
		{Label: "Remove from Group", Value: ActionRemove},
		{Label: "No Action", Value: ActionGenerate},
	}
}

// ActionFields returns the form fields of one action. For add: a group
// choice whose first choice is "create" (Create New Group) followed by the
// tenant's groups (choice key = group id, value = name), and the new
// group's name; for remove the group choice without "create"; for
// generate none. ENOTFOUND, EINVALID for an unknown action, EUNAVAILABLE
// or EUPSTREAMAUTH when the groups cannot be listed.
func (s *Service) ActionFields(ctx context.Context, name, value string) ([]Field, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return nil, err
	}
	switch value {
	case ActionGenerate:
		return []Field{}, nil
	case ActionAdd, ActionRemove:
	default:
		return nil, Errorf(EINVALID, "unknown action %q; use add, remove or generate", value)
	}
	gs, err := s.groupsOf(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var choices []FieldChoice
	if value == ActionAdd {
		choices = append(choices, FieldChoice{Key: "Create New Group", Value: CreateGroup})
	}
	for _, g := range gs {
		choices = append(choices, FieldChoice{Key: g.Name, Value: g.ID})
	}
	if value == ActionRemove {
		f := Field{Label: "Group", Key: "group", Type: "choice", Choices: choices, Mandatory: true,
			Description: "The Mimecast group the users are removed from. Users who are not members are reported as skipped."}
		if choices == nil {
			f.Choices = []FieldChoice{}
			f.Description = "No groups were found on the Mimecast account; create one first."
		}
		return []Field{f}, nil
	}
	return []Field{
		{Label: "Group", Key: "group", Type: "choice", Choices: choices, Default: CreateGroup, Mandatory: true,
			Description: "The Mimecast group the users are added to, or Create New Group to use the group named below (created if it does not exist). Users already in the group are reported as skipped."},
		{Label: "New Group Name", Key: "name", Type: "text", Mandatory: false,
			Description: "Name of the group to use when Group is Create New Group. An existing group with this name (any case) is reused; otherwise one is created."},
	}, nil
}

// checkAction normalizes an action's parameters and checks what needs no
// network. Errors are EINVALID naming the parameter.
func checkAction(a Action) (Action, error) {
	a.Value = strings.TrimSpace(a.Value)
	p := make(map[string]string, len(a.Parameters))
	for k, v := range a.Parameters {
		p[k] = v
	}
	a.Parameters = p
	switch a.Value {
	case ActionGenerate:
		return a, nil
	case ActionAdd, ActionRemove:
	case "":
		return a, FieldError("action.value", "is required: use add, remove or generate")
	default:
		return a, FieldError("action.value", "unknown action %q; use add, remove or generate", a.Value)
	}
	group := strings.TrimSpace(p["group"])
	p["group"] = group
	switch {
	case group == "" && a.Value == ActionAdd:
		return a, FieldError("action.parameters.group", "is required: choose a group, or Create New Group with a name")
	case group == "":
		return a, FieldError("action.parameters.group", "is required: choose the group to remove the users from")
	case group == CreateGroup && a.Value == ActionRemove:
		return a, FieldError("action.parameters.group", "Remove from Group cannot use Create New Group: choose an existing group")
	case group == CreateGroup:
		n := strings.TrimSpace(p["name"])
		if n == "" {
			return a, FieldError("action.parameters.name", "is required with Create New Group: give the new group's name")
		}
		if utf8.RuneCountInString(n) > MaxGroupNameLength {
			return a, FieldError("action.parameters.name", "must be at most %d characters", MaxGroupNameLength)
		}
		if strings.ContainsFunc(n, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return a, FieldError("action.parameters.name", "must not contain control characters")
		}
		p["name"] = n
	}
	return a, nil
}

// ValidateAction checks an action and its parameters, including that a
// chosen group exists (one group lookup, cached). Every problem is an
// answer {success:false, message}; only a missing configuration is an
// error (ENOTFOUND).
func (s *Service) ValidateAction(ctx context.Context, name string, a Action) (ValidationResult, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return ValidationResult{}, err
	}
	a, err = checkAction(a)
	if err != nil {
		// ErrorMessage names the parameter ("action.parameters.name: ...").
		return ValidationResult{Success: false, Message: ErrorMessage(err)}, nil
	}
	group := a.Parameters["group"]
	if a.Value == ActionGenerate {
		return ValidationResult{Success: true, Message: "No Action: users are reported, nothing is changed in Mimecast"}, nil
	}
	if group == CreateGroup {
		return ValidationResult{Success: true, Message: "users will be added to the group " + quote(a.Parameters["name"]) + " (created if it does not exist)"}, nil
	}
	gs, err := s.groupsOf(ctx, cfg)
	if err != nil {
		return ValidationResult{Success: false, Message: "could not list the Mimecast groups to check the choice: " + ErrorMessage(err)}, nil
	}
	for _, g := range gs {
		if g.ID == group {
			return ValidationResult{Success: true, Message: "group " + quote(g.Name) + " exists"}, nil
		}
	}
	return ValidationResult{Success: false, Message: "the group " + quote(group) + " does not exist in Mimecast (it may have been deleted); choose another group"}, nil
}

func quote(s string) string { return "\"" + s + "\"" }

// idempotentAnswer is what is kept for an Idempotency-Key.
type idempotentAnswer struct {
	Hash    string         `json:"hash"`
	Results []ActionResult `json:"results"`
}

// requestHash identifies an execute-action request for its idempotency key.
func requestHash(a Action, uids []string) string {
	// Addresses match case-insensitively, so a retry that only changes
	// their case is the same request.
	norm := make([]string, len(uids))
	for i, u := range uids {
		norm[i] = NormalizeEmail(u)
	}
	uids = norm
	b, _ := json.Marshal(struct {
		Value      string            `json:"value"`
		Parameters map[string]string `json:"parameters"`
		UIDs       []string          `json:"uids"`
	}{a.Value, a.Parameters, uids})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ExecuteAction carries out an action for many users and returns one
// result per input uid, in input order. Addresses match case-insensitively
// and each user is acted on once however often it is listed; an invalid
// address fails without a Mimecast call. With an idempotency key, a repeat
// of the same request returns the first answer and acts on nobody.
// ENOTFOUND, EINVALID for a bad action or key, ECONFLICT for a key reused
// with a different request, EUNAVAILABLE when the executor cannot start.
func (s *Service) ExecuteAction(ctx context.Context, actor, name, idempotencyKey string, uids []string, a Action) ([]ActionResult, error) {
	cfg, err := s.configuration(ctx, name)
	if err != nil {
		return nil, err
	}
	a, err = checkAction(a)
	if err != nil {
		return nil, err
	}
	if idempotencyKey == "" {
		return s.executeAction(ctx, actor, cfg, uids, a)
	}
	if len(idempotencyKey) > MaxIdempotencyKeyLength || strings.ContainsFunc(idempotencyKey, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, FieldError("Idempotency-Key", "must be at most %d printable characters", MaxIdempotencyKeyLength)
	}
	// Keys are scoped to the configuration and the caller: another token
	// reusing a key neither sees this caller's answer nor blocks it.
	// The creation time keeps a deleted and re-created configuration of the
	// same name from replaying the old one's answers.
	key := name + "\x00" + cfg.CreatedAt.UTC().Format(time.RFC3339Nano) + "\x00" + actor + "\x00" + idempotencyKey
	unlock := s.host.lockKey("idem\x00" + key)
	defer unlock()
	hash := requestHash(a, uids)
	b, ok, err := s.store.Idempotent(ctx, key)
	if err != nil {
		return nil, err
	}
	if ok {
		var prev idempotentAnswer
		if err := json.Unmarshal(b, &prev); err != nil {
			return nil, Errorf(EINTERNAL, "stored answer for an idempotency key is unreadable: %v", err)
		}
		if prev.Hash != hash {
			return nil, Errorf(ECONFLICT, "this Idempotency-Key was already used for a different request; use a new key for a new request")
		}
		s.log.Info().Str("configuration", name).Int("users", len(prev.Results)).Msg("execute-action repeated with the same Idempotency-Key; answering the stored results")
		return prev.Results, nil
	}
	res, err := s.executeAction(ctx, actor, cfg, uids, a)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		// The caller went away mid-way: keep no answer, so its retry with
		// the same key finishes the job (users already done come back
		// skipped) instead of replaying "cancelled".
		s.log.Warn().Str("configuration", name).Msg("execute-action cancelled; its answer is not kept for the Idempotency-Key")
		return res, nil
	}
	b, err = json.Marshal(idempotentAnswer{Hash: hash, Results: res})
	if err == nil {
		err = s.store.PutIdempotent(context.WithoutCancel(ctx), key, b, IdempotencyTTL)
	}
	if err != nil {
		s.log.Error().Err(err).Str("configuration", name).Msg("could not keep the answer for its Idempotency-Key; a repeat would act again")
	}
	return res, nil
}

func (s *Service) executeAction(ctx context.Context, actor string, cfg Configuration, uids []string, a Action) ([]ActionResult, error) {
	// One entry per distinct user, in first-seen order.
	type user struct {
		res ActionResult
	}
	byUser := make(map[string]int, len(uids))
	var users []user
	var valid []string
	for _, uid := range uids {
		n := NormalizeEmail(uid)
		if _, dup := byUser[n]; dup {
			continue
		}
		byUser[n] = len(users)
		if !validEmail(n) {
			users = append(users, user{ActionResult{UID: n, Status: Failed, Message: MsgInvalidEmail}})
			continue
		}
		users = append(users, user{ActionResult{UID: n}})
		valid = append(valid, n)
	}
	if len(valid) > 0 && a.Value != ActionGenerate && a.Parameters["group"] != CreateGroup {
		if err := s.checkGroupExists(ctx, cfg, a.Parameters["group"]); err != nil {
			return nil, err
		}
	}
	if len(valid) > 0 {
		req := ActionRequest{Configuration: cfg.Name, Tenant: tenantKey(cfg.Mimecast), Action: a, Users: valid, BatchSize: cfg.Mimecast.BatchSize}
		if a.Value != ActionGenerate {
			mc, err := s.mimecastClient(cfg)
			if err != nil {
				return nil, err
			}
			req.Mimecast = mc
		}
		res, err := s.opts.Actions.Execute(ctx, req)
		if a.Parameters["group"] == CreateGroup {
			s.host.dropGroups(cfg.Name)
		}
		if err != nil {
			return nil, err
		}
		got := make(map[string]ActionResult, len(res))
		for i, r := range res {
			k := NormalizeEmail(r.UID)
			if k == "" && i < len(valid) {
				k = valid[i]
			}
			got[k] = r
		}
		for _, n := range valid {
			u := &users[byUser[n]]
			r, ok := got[n]
			if !ok || r.Status == "" {
				r = ActionResult{Status: Failed, Message: "no result was reported for this user"}
			}
			u.res.Status, u.res.Message = r.Status, r.Message
		}
	}

	// Audit and count every distinct user, in one append.
	group := a.Parameters["group"]
	if group == CreateGroup {
		group = "create:" + a.Parameters["name"]
	}
	entries := make([]AuditEntry, 0, len(users))
	counts := map[Outcome]int{}
	for _, u := range users {
		d := map[string]string{"configuration": cfg.Name}
		if group != "" {
			d["group"] = group
		}
		if u.res.Message != "" {
			d["message"] = u.res.Message
		}
		entries = append(entries, AuditEntry{Actor: actor, Action: "action." + a.Value, Target: u.res.UID, Outcome: string(u.res.Status), Detail: d})
		counts[u.res.Status]++
	}
	_ = s.audit(ctx, entries...)
	for o, n := range counts {
		s.m.ActionOutcomes(a.Value, o, n)
	}
	s.log.Info().Str("configuration", cfg.Name).Str("action", a.Value).Int("users", len(users)).
		Int("done", counts[Done]).Int("skipped", counts[Skipped]).Int("failed", counts[Failed]).Msg("action executed")

	out := make([]ActionResult, len(uids))
	for i, uid := range uids {
		r := users[byUser[NormalizeEmail(uid)]].res
		r.UID = uid
		out[i] = r
	}
	return out, nil
}

// validEmail is a plain syntax check of a normalized address: one '@', a
// local part of 1-64 printable characters, and a dotted domain.
func validEmail(s string) bool {
	if len(s) < 3 || len(s) > 254 {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at > 64 {
		return false
	}
	if strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == utf8.RuneError || strings.ContainsRune("()<>,;:\\\"[]", r)
	}) {
		return false
	}
	domain := s[at+1:]
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if r < 0x80 && !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// checkGroupExists refuses a group id the tenant does not have (EINVALID
// naming action.parameters.group) instead of failing every user with
// Mimecast's "folder not found". It uses the cached group list and, on a
// miss, one fresh lookup, so a group created a moment ago is found.
func (s *Service) checkGroupExists(ctx context.Context, cfg Configuration, id string) error {
	for attempt := 0; attempt < 2; attempt++ {
		if attempt == 1 {
			s.host.dropGroups(cfg.Name)
		}
		gs, err := s.groupsOf(ctx, cfg)
		if err != nil {
			return err
		}
		for _, g := range gs {
			if g.ID == id {
				return nil
			}
		}
	}
	return &Error{Code: EINVALID, Field: "action.parameters.group",
		Message: fmt.Sprintf("no Mimecast group has the id %q; list the groups with GET .../actions/add/fields", id)}
}

// tenantKey names the Mimecast tenant behind settings: the same base URL
// and application (or OAuth client) is the same tenant.
func tenantKey(m MimecastSettings) string {
	id := m.AppID
	if m.Auth == AuthOAuth2 {
		id = m.ClientID
	}
	return strings.ToLower(strings.TrimRight(m.BaseURL, "/")) + "\x00" + id
}
