package mimecasttest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is the Mimecast emulator; it is an http.Handler. Create it with New
// (or NewTestServer in tests). All methods are safe for concurrent use.
type Server struct {
	opts   Options
	secret []byte // decoded SecretKey
	url    string // set by NewTestServer

	tmu       sync.RWMutex // users and groups
	users     []*userRec
	byEmail   map[string]int // lower-case email -> index in users
	groups    []*group
	groupByID map[string]*group
	rootID    string
	groupSeq  int

	logs *logStore

	amu     sync.Mutex // auth state
	replay  map[string]time.Time
	replayQ []replayEntry
	tokens  map[string]time.Time

	fmu         sync.Mutex // faults and rate limits
	faults      Faults
	bindingLeft int
	calls       uint64
	buckets     map[string]*bucket

	smu   sync.Mutex
	stats map[string]int
}

type handlerFunc func(s *Server, req *apiRequest) (int, []byte)

var endpoints = map[string]handlerFunc{
	PathGetAccount:        (*Server).handleGetAccount,
	PathSafeScoreDetails:  (*Server).handleSafeScoreDetails,
	PathSafeScoreSummary:  (*Server).handleSafeScoreSummary,
	PathFindGroups:        (*Server).handleFindGroups,
	PathCreateGroup:       (*Server).handleCreateGroup,
	PathAddGroupMember:    (*Server).handleAddGroupMember,
	PathRemoveGroupMember: (*Server).handleRemoveGroupMember,
	PathGetGroupMembers:   (*Server).handleGetGroupMembers,
	PathURLLogs:           logHandler(KindURL),
	PathAttachmentLogs:    logHandler(KindAttachment),
	PathImpersonationLogs: logHandler(KindImpersonation),
	PathDLPLogs:           logHandler(KindDLP),
}

// New builds an emulator from opts, generating the tenant's users and groups
// now and its security logs lazily on request. It panics if SecretKey is
// not valid standard base64 (a programming error in a test).
func New(opts Options) *Server {
	opts = withDefaults(opts)
	secret, err := base64.StdEncoding.DecodeString(opts.SecretKey)
	if err != nil {
		panic(fmt.Sprintf("mimecasttest: SecretKey is not standard base64: %v", err))
	}
	s := &Server{
		opts:    opts,
		secret:  secret,
		replay:  map[string]time.Time{},
		tokens:  map[string]time.Time{},
		buckets: map[string]*bucket{},
		stats:   map[string]int{},
	}
	s.generateUsers()
	s.generateGroups()
	s.logs = newLogStore(s, opts)
	return s
}

func withDefaults(o Options) Options {
	if o.Users <= 0 {
		o.Users = DefaultUsers
	}
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	o.Domain = strings.ToLower(o.Domain)
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.AppID, DefaultAppID)
	def(&o.AppKey, DefaultAppKey)
	def(&o.AccessKey, DefaultAccessKey)
	def(&o.SecretKey, DefaultSecretKey)
	def(&o.ClientID, DefaultClientID)
	def(&o.ClientSecret, DefaultClientSecret)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = DefaultMaxSkew
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.RateLimit.Refill <= 0 {
		o.RateLimit.Refill = time.Second
	}
	if len(o.EndpointRateLimits) > 0 {
		m := make(map[string]RateLimit, len(o.EndpointRateLimits))
		for p, rl := range o.EndpointRateLimits {
			if rl.Refill <= 0 {
				rl.Refill = time.Second
			}
			m[p] = rl
		}
		o.EndpointRateLimits = m
	}
	if o.PageCap <= 0 {
		o.PageCap = DefaultPageCap
	}
	if o.DefaultPageSize <= 0 {
		o.DefaultPageSize = DefaultPageSize
	}
	o.DefaultPageSize = min(o.DefaultPageSize, o.PageCap)
	if o.Groups <= 0 {
		o.Groups = DefaultGroups
	}
	if o.LogWindow <= 0 {
		o.LogWindow = DefaultLogWindow
	}
	if o.LogEnd.IsZero() {
		o.LogEnd = o.Now().UTC().Truncate(time.Second)
	}
	if o.ReplayIDs <= 0 {
		o.ReplayIDs = DefaultReplayIDs
	}
	return o
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// URL is the base URL of a server started by NewTestServer ("" otherwise).
func (s *Server) URL() string { return s.url }

// Domain is the tenant's internal mail domain.
func (s *Server) Domain() string { return s.opts.Domain }

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// ServeHTTP serves the emulated Mimecast API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == PathStats || path == PathStatsReset {
		s.serveStats(w, r)
		return
	}
	handler, known := endpoints[path]
	statKey := path
	if !known && path != PathOAuthToken {
		statKey = "other"
	}
	// The call is counted when its status is written, before any byte of
	// the reply leaves, so a client that has read a reply always sees it
	// counted; a call the client gave up on is counted 499 on return.
	rec := &statusRecorder{ResponseWriter: w, onStatus: func(st int) { s.count(statKey, st) }}
	defer func() {
		if rec.status == 0 {
			s.count(statKey, 0)
		}
	}()
	s.setRateHeaders(rec.Header(), s.peekBucket(path))

	if err := s.opts.Sleep(r.Context(), s.opts.Latency); err != nil {
		return // the client went away
	}
	if !known && path != PathOAuthToken {
		writeJSON(rec, http.StatusNotFound, errorBody(http.StatusNotFound, "err_not_found", "Resource not found", false))
		return
	}
	if r.Method != http.MethodPost {
		rec.Header().Set("Allow", http.MethodPost)
		writeJSON(rec, http.StatusMethodNotAllowed, errorBody(http.StatusMethodNotAllowed, "err_method_not_allowed", "Method Not Allowed", false))
		return
	}

	hmacCall := false
	if path != PathOAuthToken {
		kind, status, body := s.authenticate(r)
		if body != nil {
			writeJSON(rec, status, body)
			return
		}
		hmacCall = kind == authHMAC
	}

	fd := s.decideFaults(path, hmacCall)
	if err := s.opts.Sleep(r.Context(), fd.delay); err != nil {
		return
	}
	switch {
	case fd.bindingExpired:
		writeJSON(rec, http.StatusTeapot, errorBody(http.StatusTeapot, "err_xdk_binding_expired", "Binding expired", false))
		return
	case fd.failStatus != 0:
		writeJSON(rec, fd.failStatus, errorBody(fd.failStatus, "err_server_unavailable", http.StatusText(fd.failStatus), true))
		return
	case fd.rateLimited:
		st := s.peekBucket(path)
		st.remaining, st.resetMS = 0, int64(fd.resetMS)
		s.setRateHeaders(rec.Header(), st)
		writeJSON(rec, http.StatusTooManyRequests, errorBody(http.StatusTooManyRequests, "err_rate_limit_exceeded", "Quota Exceeded", true))
		return
	}
	st, ok := s.takeBucket(path)
	s.setRateHeaders(rec.Header(), st)
	if !ok {
		writeJSON(rec, http.StatusTooManyRequests, errorBody(http.StatusTooManyRequests, "err_rate_limit_exceeded", "Quota Exceeded", true))
		return
	}

	var status int
	var body []byte
	if path == PathOAuthToken {
		status, body = s.handleToken(r)
	} else {
		req, perr := s.parseRequest(r)
		if perr != nil {
			status, body = http.StatusBadRequest, errorBody(http.StatusBadRequest, "err_request_malformed", "Malformed request: "+perr.Error(), false)
		} else {
			status, body = handler(s, req)
		}
	}
	switch {
	case fd.truncate:
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(status)
		_, _ = rec.Write(body[:len(body)/2])
	case fd.abort:
		rec.Header().Set("Content-Type", "application/json")
		rec.Header().Set("Content-Length", strconv.Itoa(len(body)))
		rec.WriteHeader(status)
		_, _ = rec.Write(body[:len(body)/2])
		if f, ok := rec.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	default:
		writeJSON(rec, status, body)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status   int
	onStatus func(int) // called once, with the first status written
}

func (r *statusRecorder) setStatus(code int) {
	if r.status == 0 {
		r.status = code
		if r.onStatus != nil {
			r.onStatus(code)
		}
	}
}

func (r *statusRecorder) WriteHeader(code int) {
	r.setStatus(code)
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.setStatus(http.StatusOK)
	return r.ResponseWriter.Write(b)
}

// Flush lets streaming callers flush through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ---- envelopes ----

type meta struct {
	Status     int         `json:"status"`
	Pagination *pagination `json:"pagination,omitempty"`
}

type pagination struct {
	PageSize   int    `json:"pageSize"`
	TotalCount int    `json:"totalCount"`
	Next       string `json:"next,omitempty"`
}

type apiError struct {
	Field     string `json:"field,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

type failEntry struct {
	Key    any        `json:"key,omitempty"`
	Errors []apiError `json:"errors"`
}

func encodeEnvelope(m meta, data json.RawMessage, fail []failEntry) []byte {
	if data == nil {
		data = json.RawMessage("[]")
	}
	if fail == nil {
		fail = []failEntry{}
	}
	// Assembled by hand: json.Marshal would re-validate and compact the
	// (possibly large, already encoded) data.
	mj, fj := mustJSON(m), mustJSON(fail)
	out := make([]byte, 0, len(mj)+len(data)+len(fj)+32)
	out = append(out, `{"meta":`...)
	out = append(out, mj...)
	out = append(out, `,"data":`...)
	out = append(out, data...)
	out = append(out, `,"fail":`...)
	out = append(out, fj...)
	return append(out, '}')
}

func errorBody(status int, code, message string, retryable bool) []byte {
	return encodeEnvelope(meta{Status: status}, nil, []failEntry{{Errors: []apiError{{Code: code, Message: message, Retryable: retryable}}}})
}

// okBody is a 200 envelope with data (a value encoded as a JSON array) and
// per-item failures.
func okBody(data any, fail []failEntry, p *pagination) (int, []byte) {
	return http.StatusOK, encodeEnvelope(meta{Status: http.StatusOK, Pagination: p}, mustJSON(data), fail)
}

// Error catalogue used for per-item failures.
const (
	msgBlank = "This field, if present, cannot be blank or empty"
)

func validationFail(key any, field, code, message string) failEntry {
	return failEntry{Key: key, Errors: []apiError{{Field: field, Code: code, Message: message}}}
}

func blankFail(key any, field string) failEntry {
	return validationFail(key, field, "err_validation_blank", msgBlank)
}

func itemFail(key any, code, message string) failEntry {
	return failEntry{Key: key, Errors: []apiError{{Code: code, Message: message}}}
}

// ---- requests ----

type apiRequest struct {
	ctx       context.Context
	pageSize  int
	pageToken string
	data      []map[string]any
}

// parseRequest reads the JSON body leniently: no body, no meta or no data is
// fine; data may be one object instead of an array; Python-literal bodies
// (single quotes, True/False/None) are accepted, as Mimecast tolerates them.
func (s *Server) parseRequest(r *http.Request) (*apiRequest, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, DefaultMaxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	req := &apiRequest{ctx: r.Context(), pageSize: s.opts.DefaultPageSize}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return req, nil
	}
	var top map[string]any
	if err := decodeJSON(raw, &top); err != nil {
		if err2 := decodeJSON(pythonToJSON(raw), &top); err2 != nil {
			return nil, errors.New("body is not a JSON object")
		}
	}
	if m, ok := top["meta"].(map[string]any); ok {
		if p, ok := m["pagination"].(map[string]any); ok {
			if n, ok := toInt(p["pageSize"]); ok && n > 0 {
				req.pageSize = min(n, s.opts.PageCap)
			}
			if t, ok := p["pageToken"].(string); ok {
				req.pageToken = t
			}
		}
	}
	switch d := top["data"].(type) {
	case nil:
	case map[string]any:
		req.data = []map[string]any{d}
	case []any:
		for _, it := range d {
			m, ok := it.(map[string]any)
			if !ok {
				return nil, errors.New("data items must be objects")
			}
			req.data = append(req.data, m)
		}
	default:
		return nil, errors.New("data must be an array")
	}
	return req, nil
}

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func pythonToJSON(b []byte) []byte {
	r := strings.NewReplacer("'", `"`, "True", "true", "False", "false", "None", "null")
	return []byte(r.Replace(string(b)))
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			f, ferr := x.Float64()
			if ferr != nil {
				return 0, false
			}
			return int(f), true
		}
		return int(n), true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	case float64:
		return int(x), true
	}
	return 0, false
}

// field reads a string field: present reports whether the key exists, ok
// whether its value is a string.
func field(m map[string]any, k string) (v string, present, ok bool) {
	x, present := m[k]
	if !present {
		return "", false, true
	}
	if x == nil {
		return "", true, true
	}
	v, ok = x.(string)
	return v, true, ok
}

func firstItem(req *apiRequest) map[string]any {
	if len(req.data) == 0 {
		return map[string]any{}
	}
	return req.data[0]
}

// ---- page tokens ----

// encodeToken makes an opaque page token holding the query and position, so
// a client may resend only the token.
func encodeToken(v any) string {
	return "eNo" + base64.RawURLEncoding.EncodeToString(mustJSON(v))
}

func decodeToken(tok string, v any) error {
	if !strings.HasPrefix(tok, "eNo") {
		return errors.New("not an emulator page token")
	}
	b, err := base64.RawURLEncoding.DecodeString(tok[3:])
	if err != nil {
		return fmt.Errorf("page token: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("page token: %w", err)
	}
	return nil
}

func badTokenBody(tok string) (int, []byte) {
	return okBody([]any{}, []failEntry{validationFail(map[string]any{"pageToken": tok}, "pageToken", "err_validation_invalid_page_token", "Invalid page token")}, nil)
}

// ---- stats ----

func (s *Server) count(key string, status int) {
	if status == 0 {
		status = 499 // the client closed the request before a reply
	}
	st := strconv.Itoa(status)
	s.smu.Lock()
	defer s.smu.Unlock()
	s.stats["total"]++
	s.stats[key]++
	s.stats[key+" "+st]++
	s.stats["status "+st]++
}

// Stats returns call counts: "total"; per endpoint path (unknown paths as
// "other"); "<path> <status>"; and "status <status>" (499 = the client gave
// up before a reply). The /_emulator/ endpoints are not counted.
func (s *Server) Stats() map[string]int {
	s.smu.Lock()
	defer s.smu.Unlock()
	out := make(map[string]int, len(s.stats))
	for k, v := range s.stats {
		out[k] = v
	}
	return out
}

// Calls returns the number of calls made to one endpoint path.
func (s *Server) Calls(path string) int {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.stats[path]
}

// ResetStats zeroes every counter.
func (s *Server) ResetStats() {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.stats = map[string]int{}
}

func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == PathStats && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, mustJSON(s.Stats()))
	case r.URL.Path == PathStatsReset && r.Method == http.MethodPost:
		s.ResetStats()
		writeJSON(w, http.StatusOK, []byte("{}"))
	default:
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody(http.StatusMethodNotAllowed, "err_method_not_allowed", "Method Not Allowed", false))
	}
}
