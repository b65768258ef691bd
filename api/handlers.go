package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"mimecast-ure/plugin"
)

func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

func (s *Server) readyz(c *gin.Context) {
	if !s.opts.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not ready"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

func (s *Server) openapi(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPI) }

func (s *Server) manifest(c *gin.Context) {
	if len(s.opts.Manifest) == 0 {
		s.fail(c, plugin.Errorf(plugin.ENOTFOUND, "no manifest is configured"))
		return
	}
	c.Data(http.StatusOK, "application/json", s.opts.Manifest)
}

// ---- tokens ----

// tokenCreated is the answer of POST /tokens: the value is shown this once.
type tokenCreated struct {
	ID             string      `json:"id"`
	Token          string      `json:"token"`
	Name           string      `json:"name"`
	Owner          string      `json:"owner"`
	Role           plugin.Role `json:"role"`
	CreatedAt      time.Time   `json:"created_at"`
	ExpiresAt      *time.Time  `json:"expires_at"`
	Configurations []string    `json:"configurations,omitempty"`
}

// tokenView is one token of GET /tokens (never a hash or value).
type tokenView struct {
	ID             string      `json:"id"`
	Name           string      `json:"name"`
	Owner          string      `json:"owner"`
	Role           plugin.Role `json:"role"`
	CreatedAt      time.Time   `json:"created_at"`
	ExpiresAt      *time.Time  `json:"expires_at"`
	LastUsedAt     *time.Time  `json:"last_used_at"`
	RevokedAt      *time.Time  `json:"revoked_at,omitempty"`
	Configurations []string    `json:"configurations"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) createToken(c *gin.Context) {
	var req plugin.TokenRequest
	if err := decode(c, &req, strict, false); err != nil {
		s.fail(c, err)
		return
	}
	t, value, err := s.host.CreateToken(c.Request.Context(), actorOf(c), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/tokens/"+t.ID)
	c.JSON(http.StatusCreated, tokenCreated{
		ID: t.ID, Token: value, Name: t.Name, Owner: t.Owner, Role: t.Role,
		CreatedAt: t.CreatedAt, ExpiresAt: timePtr(t.ExpiresAt), Configurations: t.Configurations,
	})
}

func (s *Server) listTokens(c *gin.Context) {
	ts, err := s.host.ListTokens(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]tokenView, 0, len(ts))
	for _, t := range ts {
		cfgs := t.Configurations
		if cfgs == nil {
			cfgs = []string{}
		}
		out = append(out, tokenView{
			ID: t.ID, Name: t.Name, Owner: t.Owner, Role: t.Role, CreatedAt: t.CreatedAt,
			ExpiresAt: timePtr(t.ExpiresAt), LastUsedAt: timePtr(t.LastUsedAt),
			RevokedAt: timePtr(t.RevokedAt), Configurations: cfgs,
		})
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) revokeToken(c *gin.Context) {
	if err := s.host.RevokeToken(c.Request.Context(), actorOf(c), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// ---- audit ----

type auditPage struct {
	Entries []plugin.AuditEntry `json:"entries"`
	Next    string              `json:"next,omitempty"`
}

func (s *Server) audit(c *gin.Context) {
	f := plugin.AuditFilter{Actor: c.Query("actor"), Action: c.Query("action"), Target: c.Query("target")}
	var err error
	if f.Since, err = queryTime(c, "since"); err != nil {
		s.fail(c, err)
		return
	}
	if f.Until, err = queryTime(c, "until"); err != nil {
		s.fail(c, err)
		return
	}
	if f.Limit, err = queryLimit(c, 100, 1000); err != nil {
		s.fail(c, err)
		return
	}
	if cur := c.Query("cursor"); cur != "" {
		if f.After, err = strconv.ParseUint(cur, 10, 64); err != nil {
			s.fail(c, plugin.FieldError("cursor", "is not a cursor this API returned"))
			return
		}
	}
	entries, err := s.host.Audit(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	page := auditPage{Entries: entries}
	if page.Entries == nil {
		page.Entries = []plugin.AuditEntry{}
	}
	if len(entries) == f.Limit && len(entries) > 0 {
		page.Next = strconv.FormatUint(entries[len(entries)-1].Seq, 10)
	}
	c.JSON(http.StatusOK, page)
}

// ---- configurations ----

func (s *Server) createConfiguration(c *gin.Context) {
	var cfg plugin.Configuration
	if err := decode(c, &cfg, strict, false); err != nil {
		s.fail(c, err)
		return
	}
	if !tokenOf(c).Allows(cfg.Name) {
		s.fail(c, plugin.Errorf(plugin.EFORBIDDEN, "this token is not allowed on configuration %q", cfg.Name))
		return
	}
	out, err := s.host.CreateConfiguration(c.Request.Context(), actorOf(c), cfg)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/configurations/"+out.Name)
	c.JSON(http.StatusCreated, out.Redacted())
}

func (s *Server) listConfigurations(c *gin.Context) {
	all, err := s.host.ListConfigurations(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	tok := tokenOf(c)
	out := make([]plugin.Configuration, 0, len(all))
	for _, cfg := range all {
		if tok.Allows(cfg.Name) {
			out = append(out, cfg.Redacted())
		}
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getConfiguration(c *gin.Context) {
	cfg, err := s.host.GetConfiguration(c.Request.Context(), c.Param("name"))
	s.reply(c, cfg.Redacted(), err)
}

func (s *Server) updateConfiguration(c *gin.Context) {
	name := c.Param("name")
	var cfg plugin.Configuration
	if err := decode(c, &cfg, strict, false); err != nil {
		s.fail(c, err)
		return
	}
	if cfg.Name != "" && cfg.Name != name {
		s.fail(c, plugin.FieldError("name", "must match the configuration in the path (%q); a configuration cannot be renamed", name))
		return
	}
	cfg.Name = name
	out, err := s.host.UpdateConfiguration(c.Request.Context(), actorOf(c), name, cfg)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out.Redacted())
}

func (s *Server) deleteConfiguration(c *gin.Context) {
	if err := s.host.DeleteConfiguration(c.Request.Context(), actorOf(c), c.Param("name")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) validateConfiguration(c *gin.Context) {
	if err := noBody(c); err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.host.ValidateConfiguration(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// ---- plugin operations ----

// noBody checks the body of a POST route that reads none: an empty body
// (or none) is fine, and so is any JSON value (the platform may send one),
// but a body that is not JSON is the caller's mistake (400), as on every
// route that reads one.
func noBody(c *gin.Context) error {
	var v json.RawMessage
	return decode(c, &v, lenient, true)
}

// recordsBody is the body of fetch-scores and execute-action.
type recordsBody struct {
	Records []recordRef `json:"records"`
}

// recordRef is one element of records: a uid is required (a pointer, so
// a record without one, or a null record, is told apart from "").
type recordRef struct {
	UID *string `json:"uid"`
}

// uids returns the records' uids, or an EINVALID naming the first record
// without a uid string (records[i].uid): such a record is the caller's
// mistake, not a user to skip.
func (b recordsBody) uids() ([]string, error) {
	if len(b.Records) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(b.Records))
	for i, r := range b.Records {
		if r.UID == nil {
			return nil, plugin.FieldError(fmt.Sprintf("records[%d].uid", i), "is required: each record needs a uid string")
		}
		out = append(out, *r.UID)
	}
	return out, nil
}

// actionBody is the body of validate-action and execute-action.
type actionBody struct {
	recordsBody
	Action *plugin.Action `json:"action"`
}

// checkAction refuses a missing action or an unknown action value.
func (s *Server) checkAction(a *plugin.Action) error {
	if a == nil {
		return plugin.FieldError("action", "is required")
	}
	for _, o := range s.host.Actions() {
		if o.Value == a.Value {
			return nil
		}
	}
	return plugin.FieldError("action.value", "unknown action %q (want one of %s)", a.Value, strings.Join(s.actionValues(), ", "))
}

func (s *Server) actionValues() []string {
	var out []string
	for _, o := range s.host.Actions() {
		out = append(out, o.Value)
	}
	return out
}

func (s *Server) fetchRecords(c *gin.Context) {
	if err := noBody(c); err != nil {
		s.fail(c, err)
		return
	}
	recs, err := s.host.FetchRecords(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if recs == nil {
		recs = []plugin.Record{}
	}
	c.JSON(http.StatusOK, gin.H{"records": recs})
}

func (s *Server) fetchScores(c *gin.Context) {
	var body recordsBody
	if err := decode(c, &body, lenient, true); err != nil {
		s.fail(c, err)
		return
	}
	uids, err := body.uids()
	if err != nil {
		s.fail(c, err)
		return
	}
	recs, err := s.host.FetchScores(c.Request.Context(), c.Param("name"), uids)
	if err != nil {
		s.fail(c, err)
		return
	}
	if recs == nil {
		recs = []plugin.ScoredRecord{}
	}
	c.JSON(http.StatusOK, gin.H{"records": recs})
}

func (s *Server) actions(c *gin.Context) {
	// The list is the same for every configuration, but an unknown one
	// is still a 404.
	if _, err := s.host.GetConfiguration(c.Request.Context(), c.Param("name")); err != nil {
		s.fail(c, err)
		return
	}
	opts := s.host.Actions()
	if opts == nil {
		opts = []plugin.ActionOption{}
	}
	c.JSON(http.StatusOK, opts)
}

func (s *Server) actionFields(c *gin.Context) {
	value := c.Param("value")
	if err := s.checkAction(&plugin.Action{Value: value}); err != nil {
		s.fail(c, err)
		return
	}
	fields, err := s.host.ActionFields(c.Request.Context(), c.Param("name"), value)
	if err != nil {
		s.fail(c, err)
		return
	}
	if fields == nil {
		fields = []plugin.Field{}
	}
	c.JSON(http.StatusOK, fields)
}

func (s *Server) validateAction(c *gin.Context) {
	var body actionBody
	if err := decode(c, &body, lenient, false); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.checkAction(body.Action); err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.host.ValidateAction(c.Request.Context(), c.Param("name"), *body.Action)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (s *Server) executeAction(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if len(key) > MaxIdempotencyKey {
		s.fail(c, plugin.FieldError("Idempotency-Key", "must be at most %d characters", MaxIdempotencyKey))
		return
	}
	for _, r := range key {
		if r < 0x20 || r > 0x7e {
			s.fail(c, plugin.FieldError("Idempotency-Key", "must be printable ASCII"))
			return
		}
	}
	var body actionBody
	if err := decode(c, &body, lenient, false); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.checkAction(body.Action); err != nil {
		s.fail(c, err)
		return
	}
	if len(body.Records) == 0 {
		s.fail(c, plugin.FieldError("records", "name at least one user"))
		return
	}
	uids, err := body.uids()
	if err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.host.ExecuteAction(c.Request.Context(), actorOf(c), c.Param("name"), key, uids, *body.Action)
	if err != nil {
		s.fail(c, err)
		return
	}
	if res == nil {
		res = []plugin.ActionResult{}
	}
	c.JSON(http.StatusOK, gin.H{"results": res})
}

func (s *Server) triggerSync(c *gin.Context) { s.accept(c, s.host.TriggerSync) }

func (s *Server) syncStatus(c *gin.Context) {
	st, err := s.host.SyncStatus(c.Request.Context(), c.Param("name"))
	s.reply(c, st, err)
}

// accept answers 202 once trigger has started work on the configuration
// named in the path. These routes take no body (an empty or JSON one is
// tolerated).
func (s *Server) accept(c *gin.Context, trigger func(context.Context, string) error) {
	if err := noBody(c); err != nil {
		s.fail(c, err)
		return
	}
	if err := trigger(c.Request.Context(), c.Param("name")); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"accepted": true, "configuration": c.Param("name")})
}

// reply answers v as 200 JSON, or err in the one error shape.
func (s *Server) reply(c *gin.Context, v any, err error) {
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// ---- events ----

func (s *Server) pullEvents(c *gin.Context) { s.accept(c, s.host.PullEvents) }

func (s *Server) eventsStatus(c *gin.Context) {
	cps, err := s.host.EventsStatus(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if cps == nil {
		cps = []plugin.Checkpoint{}
	}
	st, err := s.host.EventsPullState(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"logs": cps, "pull": st})
}

func (s *Server) events(c *gin.Context) {
	f := plugin.EventFilter{User: c.Query("user"), Rule: c.Query("rule"), Cursor: c.Query("cursor")}
	var err error
	if v := c.Query("since"); v != "" {
		if f.Since, err = parseSince(v, s.now()); err != nil {
			s.fail(c, err)
			return
		}
	}
	if f.Limit, err = queryLimit(c, 100, 1000); err != nil {
		s.fail(c, err)
		return
	}
	evs, next, err := s.host.Events(c.Request.Context(), c.Param("name"), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	if evs == nil {
		evs = []plugin.RiskEvent{}
	}
	body := gin.H{"events": evs}
	if next != "" {
		body["next"] = next
	}
	c.JSON(http.StatusOK, body)
}

func (s *Server) userDetail(c *gin.Context) {
	d, err := s.host.UserDetail(c.Request.Context(), c.Param("name"), c.Param("uid"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if d.Events == nil {
		d.Events = []plugin.EventContribution{}
	}
	c.JSON(http.StatusOK, d)
}

func (s *Server) targets(c *gin.Context) {
	rule := c.Query("rule")
	if rule == "" {
		s.fail(c, plugin.FieldError("rule", "is required (a rule id such as clicked_phishing)"))
		return
	}
	since := c.DefaultQuery("since", "30d")
	var d time.Duration
	if t, err := time.Parse(time.RFC3339, since); err == nil {
		if d = s.now().Sub(t); d <= 0 || d > maxAge {
			s.fail(c, plugin.FieldError("since", "must be in the past, at most 3650d ago"))
			return
		}
	} else if d, err = parseAge(since); err != nil {
		s.fail(c, plugin.FieldError("since", "%s", err))
		return
	}
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" {
		s.fail(c, plugin.FieldError("format", "must be json or csv"))
		return
	}
	t, err := s.host.Targets(c.Request.Context(), c.Param("name"), rule, d)
	if err != nil {
		s.fail(c, err)
		return
	}
	if t.Users == nil {
		t.Users = []plugin.TargetUser{}
	}
	if t.Since == "" {
		t.Since = since
	}
	if format == "json" {
		c.JSON(http.StatusOK, t)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="targets.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"uid", "count", "last_at"})
	for _, u := range t.Users {
		last := ""
		if !u.LastAt.IsZero() {
			last = u.LastAt.UTC().Format(time.RFC3339)
		}
		_ = w.Write([]string{csvSafe(u.UID), strconv.Itoa(u.Count), last})
	}
	w.Flush()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula: addresses
// come from mail logs, which an attacker can influence.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// ---- controls ----

func (s *Server) validateControls(c *gin.Context) {
	if err := noBody(c); err != nil {
		s.fail(c, err)
		return
	}
	res, err := s.host.ValidateControls(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if res.Checks == nil {
		res.Checks = []plugin.ControlCheck{}
	}
	c.JSON(http.StatusOK, res)
}

func (s *Server) controlsStatus(c *gin.Context) {
	st, err := s.host.ControlsStatus(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if st.Counts == nil {
		st.Counts = map[string]int{}
	}
	if st.LastErrors == nil {
		st.LastErrors = []string{}
	}
	c.JSON(http.StatusOK, st)
}
