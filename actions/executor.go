// Package actions carries out group actions on many users at once: one
// group lookup per call, a group created only when missing (never twice,
// even by concurrent calls), membership writes batched and run with
// bounded concurrency, and one result per user in input order. Retries of
// transient Mimecast failures belong to the client, so none happen here.
package actions

import (
	"context"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"mimecast-ure/plugin"
)

// DefaultConcurrency is how many membership batches run at once.
const DefaultConcurrency = 4

// Messages of per-user results.
const (
	MsgNoAction  = "no action taken"
	MsgAdded     = "added to the group"
	MsgRemoved   = "removed from the group"
	MsgNoResult  = "Mimecast reported no result for this address"
	MsgCancelled = "not processed: the request was cancelled"
)

// Options configures an Executor.
type Options struct {
	// Concurrency bounds the membership batches in flight per call
	// (default 4).
	Concurrency int
	Logger      zerolog.Logger
}

// Executor implements plugin.ActionExecutor. It is safe for concurrent use.
type Executor struct {
	conc int
	log  zerolog.Logger

	mu    sync.Mutex
	locks map[string]*keyLock // per (configuration, group name) create locks
}

var _ plugin.ActionExecutor = (*Executor)(nil)

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// New returns an Executor.
func New(opts Options) *Executor {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	return &Executor{conc: opts.Concurrency, log: opts.Logger.With().Str("component", "actions").Logger(), locks: map[string]*keyLock{}}
}

// Execute acts on req.Users and returns one result per user in input
// order. Per-user outcomes: done; skipped with the reason (already a
// member, not a member); failed with Mimecast's reason, or with the
// caller-safe error of a batch call that failed as a whole. If the group
// to create can be neither found nor created, every user fails with why.
// The error is EINVALID for a request that cannot be carried out at all
// (unknown action, missing group, "create" for remove, no client).
func (e *Executor) Execute(ctx context.Context, req plugin.ActionRequest) ([]plugin.ActionResult, error) {
	a := req.Action
	group := strings.TrimSpace(a.Parameters["group"])
	switch a.Value {
	case plugin.ActionGenerate:
		out := make([]plugin.ActionResult, len(req.Users))
		for i, u := range req.Users {
			out[i] = plugin.ActionResult{UID: u, Status: plugin.Done, Message: MsgNoAction}
		}
		return out, nil
	case plugin.ActionAdd, plugin.ActionRemove:
	default:
		return nil, plugin.FieldError("action.value", "unknown action %q; use add, remove or generate", a.Value)
	}
	switch {
	case group == "":
		return nil, plugin.FieldError("action.parameters.group", "is required")
	case group == plugin.CreateGroup && a.Value == plugin.ActionRemove:
		return nil, plugin.FieldError("action.parameters.group", "Remove from Group cannot use Create New Group: choose an existing group")
	case req.Mimecast == nil:
		return nil, plugin.Errorf(plugin.EINVALID, "no Mimecast client for configuration %q", req.Configuration)
	}
	if len(req.Users) == 0 {
		return []plugin.ActionResult{}, nil
	}
	log := e.log.With().Str("configuration", req.Configuration).Str("action", a.Value).Logger()

	groupID := group
	if group == plugin.CreateGroup {
		name := strings.TrimSpace(a.Parameters["name"])
		if name == "" {
			return nil, plugin.FieldError("action.parameters.name", "is required with Create New Group")
		}
		tenant := req.Tenant
		if tenant == "" {
			tenant = req.Configuration
		}
		g, created, err := e.ensureGroup(ctx, tenant, req.Mimecast, name)
		if err != nil {
			log.Warn().Err(err).Str("group_name", name).Msg("could not find or create the group")
			msg := "could not find or create the group " + quote(name) + ": " + plugin.ErrorMessage(err)
			return failAll(req.Users, msg), nil
		}
		if created {
			log.Info().Str("group", g.ID).Str("group_name", g.Name).Msg("group created")
		}
		groupID = g.ID
	}

	size := req.BatchSize
	if size <= 0 {
		size = plugin.DefaultBatchSize
	}
	size = min(size, plugin.MaxBatchSize)
	write := req.Mimecast.AddMembers
	doneMsg := MsgAdded
	if a.Value == plugin.ActionRemove {
		write = req.Mimecast.RemoveMembers
		doneMsg = MsgRemoved
	}

	out := make([]plugin.ActionResult, len(req.Users))
	sem := make(chan struct{}, e.conc)
	var wg sync.WaitGroup
	for start := 0; start < len(req.Users); start += size {
		end := min(start+size, len(req.Users))
		batch := req.Users[start:end]
		res := out[start:end]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			fill(res, batch, plugin.Failed, MsgCancelled)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if ctx.Err() != nil {
				fill(res, batch, plugin.Failed, MsgCancelled)
				return
			}
			mr, err := write(ctx, groupID, batch)
			if err != nil {
				log.Warn().Err(err).Int("users", len(batch)).Msg("membership batch failed")
				fill(res, batch, plugin.Failed, plugin.ErrorMessage(err))
				return
			}
			mapResults(res, batch, mr, doneMsg)
		}()
	}
	wg.Wait()
	return out, nil
}

// ensureGroup finds the group named name (exact, any case) with one
// find-groups call, and creates it only if none exists. Calls for the same
// (tenant, name) are serialized, even from two configurations of one
// tenant, so the second sees the first's group instead of creating another.
func (e *Executor) ensureGroup(ctx context.Context, tenant string, mc plugin.Mimecast, name string) (plugin.Group, bool, error) {
	unlock := e.lock(tenant + "\x00" + strings.ToLower(name))
	defer unlock()
	gs, err := mc.FindGroups(ctx, name)
	if err != nil {
		return plugin.Group{}, false, err
	}
	// Prefer a cloud group (members can be added to it) over an
	// LDAP-synced one of the same name, and an exact-case match over one
	// that differs only in case.
	best, rank := plugin.Group{}, 0
	for _, g := range gs {
		if g.ID == "" || !strings.EqualFold(strings.TrimSpace(g.Name), name) {
			continue
		}
		r := 1
		if g.Source == "" || strings.EqualFold(g.Source, "cloud") {
			r += 2
		}
		if strings.TrimSpace(g.Name) == name {
			r++
		}
		if r > rank {
			best, rank = g, r
		}
	}
	if rank > 0 {
		return best, false, nil
	}
	g, err := mc.CreateGroup(ctx, name)
	if err != nil {
		return plugin.Group{}, false, err
	}
	if g.ID == "" {
		return plugin.Group{}, false, plugin.Errorf(plugin.EUNAVAILABLE, "Mimecast created the group but returned no id")
	}
	return g, true, nil
}

func (e *Executor) lock(key string) func() {
	e.mu.Lock()
	l := e.locks[key]
	if l == nil {
		l = &keyLock{}
		e.locks[key] = l
	}
	l.refs++
	e.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		e.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(e.locks, key)
		}
		e.mu.Unlock()
	}
}

// mapResults puts Mimecast's per-address results into res: by address
// (any case), else by position when the client answered one per input.
func mapResults(res []plugin.ActionResult, batch []string, mr []plugin.MemberResult, doneMsg string) {
	by := make(map[string]plugin.MemberResult, len(mr))
	for _, r := range mr {
		by[plugin.NormalizeEmail(r.Email)] = r
	}
	for i, u := range batch {
		r, ok := by[plugin.NormalizeEmail(u)]
		if !ok && len(mr) == len(batch) && mr[i].Email == "" {
			r, ok = mr[i], true
		}
		switch {
		case !ok || r.Status == "":
			res[i] = plugin.ActionResult{UID: u, Status: plugin.Failed, Message: MsgNoResult}
		case r.Status == plugin.Done:
			msg := r.Reason
			if msg == "" {
				msg = doneMsg
			}
			res[i] = plugin.ActionResult{UID: u, Status: plugin.Done, Message: msg}
		default:
			msg := r.Reason
			if msg == "" && r.Code != "" {
				msg = r.Code
			}
			res[i] = plugin.ActionResult{UID: u, Status: r.Status, Message: msg}
		}
	}
}

func fill(res []plugin.ActionResult, batch []string, st plugin.Outcome, msg string) {
	for i, u := range batch {
		res[i] = plugin.ActionResult{UID: u, Status: st, Message: msg}
	}
}

func failAll(users []string, msg string) []plugin.ActionResult {
	out := make([]plugin.ActionResult, len(users))
	fill(out, users, plugin.Failed, msg)
	return out
}

func quote(s string) string { return "\"" + s + "\"" }
