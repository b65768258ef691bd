package mimecasttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	kURL = iota
	kAttachment
	kImpersonation
	kDLP
	numKinds
)

var kindNames = [numKinds]string{KindURL, KindAttachment, KindImpersonation, KindDLP}
var recordKeys = [numKinds]string{"clickLogs", "attachmentLogs", "impersonationLogs", "dlpLogs"}
var timeFields = [numKinds]string{"date", "date", "eventTime", "eventTime"}

func kindIndex(kind string) (int, bool) {
	for i, k := range kindNames {
		if k == kind {
			return i, true
		}
	}
	return 0, false
}

type explicitRec struct {
	t   int64 // unix seconds
	rec map[string]any
	js  []byte
}

// logStore holds the lazy generator and the records tests added. Generated
// record i of a kind with count c is dated start + floor(i*W/c) seconds
// (W = window seconds), so a time range maps to an index range by arithmetic.
type logStore struct {
	gen    generator
	start  int64
	window int64
	count  [numKinds]int64

	mu       sync.RWMutex
	explicit [numKinds][]explicitRec // sorted by time, insertion order kept on ties

	cmu   sync.Mutex
	cache map[string]int64 // generated-record counts per filtered query
}

func newLogStore(s *Server, o Options) *logStore {
	ls := &logStore{cache: map[string]int64{}}
	ls.window = int64(o.LogWindow / time.Second)
	if ls.window < 1 {
		ls.window = 1
	}
	ls.start = o.LogEnd.Unix() - ls.window
	for k, name := range kindNames {
		n := DefaultLogVolume
		if o.LogVolume != nil {
			n = o.LogVolume[name]
		}
		ls.count[k] = int64(max(n, 0))
	}
	ls.gen = generator{seed: uint64(o.Seed), domain: o.Domain}
	for _, u := range s.users {
		ls.gen.emails = append(ls.gen.emails, u.Email)
		ls.gen.names = append(ls.gen.names, u.Name)
	}
	if len(ls.gen.emails) == 0 {
		ls.gen.emails, ls.gen.names = []string{"nobody@" + o.Domain}, []string{"No Body"}
	}
	return ls
}

func (ls *logStore) genTime(k int, i int64) int64 {
	return ls.start + i*ls.window/ls.count[k]
}

// firstAtOrAfter is the smallest generated index dated >= t (or count).
func (ls *logStore) firstAtOrAfter(k int, t int64) int64 {
	c := ls.count[k]
	if t <= ls.start {
		return 0
	}
	d := t - ls.start
	if d >= ls.window {
		return c
	}
	return min(c, (d*c+ls.window-1)/ls.window)
}

// ---- queries ----

// logQuery is a resolved request; it travels inside page tokens, so a client
// may page by token alone.
type logQuery struct {
	Kind        string   `json:"k"`
	From        int64    `json:"f"` // inclusive, unix seconds
	To          int64    `json:"t"` // exclusive, unix seconds
	Oldest      bool     `json:"o,omitempty"`
	Route       string   `json:"r,omitempty"`
	Routes      []string `json:"rs,omitempty"`
	Scan        string   `json:"sr,omitempty"`
	Result      string   `json:"re,omitempty"`
	Tagged      *bool    `json:"tm,omitempty"`
	Idents      []string `json:"id,omitempty"`
	Actions     []string `json:"a,omitempty"`
	SearchField string   `json:"sf,omitempty"`
	Query       string   `json:"q,omitempty"`
	G           int64    `json:"g"` // next generated index in scan order
	E           int      `json:"e"` // next explicit index in scan order
}

func (q *logQuery) attrFiltered() bool {
	return q.Route != "" || len(q.Routes) > 0 || q.Scan != "" || q.Result != "" || q.Tagged != nil ||
		len(q.Idents) > 0 || len(q.Actions) > 0 || q.SearchField != ""
}

func (q *logQuery) cacheKey() string {
	c := *q
	c.G, c.E = 0, 0
	return string(mustJSON(c))
}

func anyFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// match applies the filters; text returns a record field for searchField.
func (q *logQuery) match(a attrs, text func(string) string) bool {
	if q.Route != "" && !strings.EqualFold(a.route, q.Route) {
		return false
	}
	if len(q.Routes) > 0 && !anyFold(q.Routes, a.route) {
		return false
	}
	if q.Scan != "" && !strings.EqualFold(a.scan, q.Scan) {
		return false
	}
	if q.Result != "" && !strings.EqualFold(a.result, q.Result) {
		return false
	}
	if q.Tagged != nil && a.tagged != *q.Tagged {
		return false
	}
	if len(q.Idents) > 0 {
		hit := false
		for _, id := range a.idents {
			hit = hit || anyFold(q.Idents, id)
		}
		if !hit {
			return false
		}
	}
	if len(q.Actions) > 0 && !anyFold(q.Actions, a.action) {
		return false
	}
	if q.SearchField != "" {
		fields := []string{q.SearchField}
		if q.SearchField == "all" {
			fields = []string{"senderAddress", "recipientAddress", "subject", "policy"}
		}
		hit := false
		for _, f := range fields {
			hit = hit || containsFold(text(f), q.Query)
		}
		if !hit {
			return false
		}
	}
	return true
}

func explicitAttrs(m map[string]any) attrs {
	str := func(k string) string { s, _ := m[k].(string); return s }
	a := attrs{route: str("route"), scan: str("scanResult"), result: str("result"), action: str("action")}
	switch v := m["taggedMalicious"].(type) {
	case bool:
		a.tagged = v
	case string:
		a.tagged = strings.EqualFold(v, "true")
	}
	switch v := m["identifiers"].(type) {
	case []string:
		a.idents = v
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				a.idents = append(a.idents, s)
			}
		}
	}
	return a
}

func recordText(rec any, f string) string {
	var m map[string]any
	switch r := rec.(type) {
	case map[string]any:
		m = r
	default:
		_ = json.Unmarshal(mustJSON(r), &m)
	}
	s, _ := m[f].(string)
	return s
}

// ---- scanning ----

type logItem struct {
	gen bool
	i   int64
	e   int
}

type scanner struct {
	ls       *logStore
	k        int
	q        *logQuery
	lo, hi   int64 // generated index range
	elo, ehi int   // explicit index range
	exp      []explicitRec
}

func (ls *logStore) newScanner(k int, q *logQuery) *scanner {
	sc := &scanner{ls: ls, k: k, q: q, exp: ls.explicit[k]}
	if ls.count[k] > 0 {
		sc.lo, sc.hi = ls.firstAtOrAfter(k, q.From), ls.firstAtOrAfter(k, q.To)
		sc.hi = max(sc.hi, sc.lo) // from after to: nothing
	}
	sc.elo = sort.Search(len(sc.exp), func(j int) bool { return sc.exp[j].t >= q.From })
	sc.ehi = sort.Search(len(sc.exp), func(j int) bool { return sc.exp[j].t >= q.To })
	sc.ehi = max(sc.ehi, sc.elo)
	return sc
}

func (sc *scanner) genMatch(i int64) bool {
	a := sc.ls.gen.attrs(sc.k, i)
	return sc.q.match(a, func(f string) string {
		return recordText(sc.ls.gen.record(sc.k, i, sc.ls.genTime(sc.k, i)), f)
	})
}

func (sc *scanner) expMatch(j int) bool {
	m := sc.exp[j].rec
	return sc.q.match(explicitAttrs(m), func(f string) string { return recordText(m, f) })
}

// next returns the next matching record from position (g, e) in scan order
// and the position after it.
func (sc *scanner) next(g int64, e int) (logItem, int64, int, bool) {
	q := sc.q
	for {
		gOK, eOK := g >= sc.lo && g < sc.hi, e >= sc.elo && e < sc.ehi
		if !gOK && !eOK {
			return logItem{}, g, e, false
		}
		useGen := gOK
		if gOK && eOK {
			gt, et := sc.ls.genTime(sc.k, g), sc.exp[e].t
			if q.Oldest {
				useGen = gt <= et
			} else {
				useGen = gt > et
			}
		}
		step := int64(1)
		if !q.Oldest {
			step = -1
		}
		if useGen {
			i := g
			g += step
			if sc.genMatch(i) {
				return logItem{gen: true, i: i}, g, e, true
			}
		} else {
			j := e
			e += int(step)
			if sc.expMatch(j) {
				return logItem{e: j}, g, e, true
			}
		}
	}
}

func (sc *scanner) startPos() (int64, int) {
	if sc.q.Oldest {
		return sc.lo, sc.elo
	}
	return sc.hi - 1, sc.ehi - 1
}

// total counts matching records; generated counts are cached per query.
func (ls *logStore) total(sc *scanner) int64 {
	q := sc.q
	var n int64
	if !q.attrFiltered() {
		n = sc.hi - sc.lo
	} else {
		key := q.cacheKey()
		ls.cmu.Lock()
		c, ok := ls.cache[key]
		ls.cmu.Unlock()
		if ok {
			n = c
		} else {
			for i := sc.lo; i < sc.hi; i++ {
				if sc.genMatch(i) {
					n++
				}
			}
			ls.cmu.Lock()
			if len(ls.cache) > 256 {
				ls.cache = map[string]int64{}
			}
			ls.cache[key] = n
			ls.cmu.Unlock()
		}
	}
	for j := sc.elo; j < sc.ehi; j++ {
		if !q.attrFiltered() || sc.expMatch(j) {
			n++
		}
	}
	return n
}

// ---- request parsing ----

func parseReqTime(s string) (time.Time, error) {
	for _, layout := range []string{respTimeLayout, time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad date %q", s)
}

// ceilSec rounds up to a whole second, so "dated >= from" holds for the
// second-resolution dates records show.
func ceilSec(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

var validRoutes = []string{"inbound", "outbound", "internal", "external"}
var validSearchFields = []string{"senderAddress", "recipientAddress", "subject", "policy", "all"}

func (s *Server) parseLogQuery(k int, item map[string]any) (*logQuery, *failEntry) {
	fail := func(f failEntry) (*logQuery, *failEntry) { return nil, &f }
	typeFail := func(f, want string) (*logQuery, *failEntry) {
		return fail(validationFail(item, f, "err_validation_invalid_type", "This field must be "+want))
	}
	now := s.opts.Now().UTC()
	q := &logQuery{Kind: kindNames[k]}
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	to := now
	for _, f := range []string{"from", "to"} {
		v, present, ok := field(item, f)
		if !present {
			continue
		}
		if !ok {
			return typeFail(f, "a date string")
		}
		if strings.TrimSpace(v) == "" {
			return fail(blankFail(item, f))
		}
		t, err := parseReqTime(v)
		if err != nil {
			return fail(validationFail(item, f, "err_validation_invalid_date", "Invalid date, expected yyyy-MM-ddTHH:mm:ssZ"))
		}
		if f == "from" {
			from = t
		} else {
			to = t
		}
	}
	q.From, q.To = ceilSec(from), ceilSec(to)
	// Nothing dated after now exists yet: a LogEnd in the future makes
	// records "arrive" as the clock passes them.
	if _, given := item["to"]; !given || q.To > now.Unix()+1 {
		q.To = now.Unix() + 1 // "up to now" includes a record dated this second
	}
	if v, present := item["oldestFirst"]; present && v != nil {
		switch b := v.(type) {
		case bool:
			q.Oldest = b
		case string:
			q.Oldest = strings.EqualFold(b, "true")
		default:
			return typeFail("oldestFirst", "a boolean")
		}
	}
	str := func(f string) (string, *failEntry) {
		v, _, ok := field(item, f)
		if !ok {
			fe := validationFail(item, f, "err_validation_invalid_type", "This field must be a string")
			return "", &fe
		}
		if strings.EqualFold(v, "all") {
			v = ""
		}
		return v, nil
	}
	list := func(f string) ([]string, *failEntry) {
		v, present := item[f]
		if !present || v == nil {
			return nil, nil
		}
		arr, ok := v.([]any)
		if !ok {
			fe := validationFail(item, f, "err_validation_invalid_type", "This field must be an array")
			return nil, &fe
		}
		var out []string
		for _, x := range arr {
			s, ok := x.(string)
			if !ok || s == "" {
				fe := blankFail(item, f)
				return nil, &fe
			}
			out = append(out, s)
		}
		return out, nil
	}
	var fe *failEntry
	switch k {
	case kURL, kAttachment:
		if q.Route, fe = str("route"); fe != nil {
			return nil, fe
		}
		if q.Route != "" && !anyFold(validRoutes, q.Route) {
			return fail(validationFail(item, "route", "err_validation_invalid_value", "Invalid route"))
		}
		if k == kURL {
			q.Scan, fe = str("scanResult")
		} else {
			q.Result, fe = str("result")
		}
		if fe != nil {
			return nil, fe
		}
	case kImpersonation, kDLP:
		if k == kImpersonation {
			if v, present := item["taggedMalicious"]; present && v != nil {
				b, ok := v.(bool)
				if !ok {
					return typeFail("taggedMalicious", "a boolean")
				}
				q.Tagged = &b
			}
			if q.Idents, fe = list("identifiers"); fe != nil {
				return nil, fe
			}
		} else {
			if q.Routes, fe = list("routes"); fe != nil {
				return nil, fe
			}
			for _, r := range q.Routes {
				if !anyFold(validRoutes, r) {
					return fail(validationFail(item, "routes", "err_validation_invalid_value", "Invalid route"))
				}
			}
		}
		if q.Actions, fe = list("actions"); fe != nil {
			return nil, fe
		}
		sf, present, ok := field(item, "searchField")
		if present {
			if !ok || sf == "" {
				return fail(blankFail(item, "searchField"))
			}
			if !anyFold(validSearchFields, sf) {
				return fail(validationFail(item, "searchField", "err_validation_invalid_value", "Invalid searchField"))
			}
			qv, _, ok := field(item, "query")
			if !ok || strings.TrimSpace(qv) == "" {
				return fail(blankFail(item, "query"))
			}
			q.SearchField, q.Query = sf, qv
		}
	}
	return q, nil
}

// ---- handler ----

func logHandler(kind string) handlerFunc {
	k, _ := kindIndex(kind)
	return func(s *Server, req *apiRequest) (int, []byte) { return s.serveLogs(k, req) }
}

func (s *Server) serveLogs(k int, req *apiRequest) (int, []byte) {
	var q *logQuery
	if req.pageToken != "" {
		q = &logQuery{}
		if err := decodeToken(req.pageToken, q); err != nil || q.Kind != kindNames[k] {
			return badTokenBody(req.pageToken)
		}
	} else {
		var fe *failEntry
		if q, fe = s.parseLogQuery(k, firstItem(req)); fe != nil {
			return okBody([]any{}, []failEntry{*fe}, nil)
		}
	}
	ls := s.logs
	ls.mu.RLock()
	defer ls.mu.RUnlock()
	sc := ls.newScanner(k, q)
	g, e := q.G, q.E
	if req.pageToken == "" {
		g, e = sc.startPos()
	}
	var buf bytes.Buffer
	buf.Grow(req.pageSize * 700)
	buf.WriteByte('[')
	n := 0
	for n < req.pageSize {
		if req.ctx.Err() != nil {
			break
		}
		it, ng, ne, ok := sc.next(g, e)
		if !ok {
			g, e = ng, ne
			break
		}
		g, e = ng, ne
		if n > 0 {
			buf.WriteByte(',')
		}
		if it.gen {
			buf.Write(mustJSON(ls.gen.record(k, it.i, ls.genTime(k, it.i))))
		} else {
			buf.Write(sc.exp[it.e].js)
		}
		n++
	}
	buf.WriteByte(']')
	total := ls.total(sc)
	p := &pagination{PageSize: req.pageSize, TotalCount: int(total)}
	if n == req.pageSize {
		if _, _, _, more := sc.next(g, e); more {
			q.G, q.E = g, e
			p.Next = encodeToken(q)
		}
	}
	var data bytes.Buffer
	fmt.Fprintf(&data, `[{%q:`, recordKeys[k])
	data.Write(buf.Bytes())
	if k == kImpersonation {
		fmt.Fprintf(&data, `,"resultCount":%d`, total)
	}
	data.WriteString("}]")
	return http.StatusOK, encodeEnvelope(meta{Status: http.StatusOK, Pagination: p}, json.RawMessage(data.Bytes()), nil)
}

// ---- public API for tests ----

// AddLogRecords appends explicit records of a kind (KindURL, KindAttachment,
// KindImpersonation, KindDLP) served alongside the generated ones. A
// record's time comes from its "date" (url, attachment) or "eventTime"
// (impersonation, dlp) field in either accepted layout; when absent, Now is
// used and the field is set. An unparseable value is served as given and
// sorted at Now. It panics on an unknown kind.
func (s *Server) AddLogRecords(kind string, recs ...map[string]any) {
	k, ok := kindIndex(kind)
	if !ok {
		panic(fmt.Sprintf("mimecasttest: unknown log kind %q", kind))
	}
	ls := s.logs
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, r := range recs {
		m := make(map[string]any, len(r)+1)
		for key, v := range r {
			m[key] = v
		}
		t := s.opts.Now().UTC()
		if v, ok := m[timeFields[k]].(string); ok {
			if pt, err := parseReqTime(v); err == nil {
				t = pt
			}
		} else {
			m[timeFields[k]] = t.Format(respTimeLayout)
		}
		ts := t.Unix()
		list := ls.explicit[k]
		pos := sort.Search(len(list), func(j int) bool { return list[j].t > ts })
		list = append(list, explicitRec{})
		copy(list[pos+1:], list[pos:])
		list[pos] = explicitRec{t: ts, rec: m, js: mustJSON(m)}
		ls.explicit[k] = list
	}
}

// LogCount is the number of records of a kind: generated plus added.
func (s *Server) LogCount(kind string) int {
	k, ok := kindIndex(kind)
	if !ok {
		return 0
	}
	s.logs.mu.RLock()
	defer s.logs.mu.RUnlock()
	return int(s.logs.count[k]) + len(s.logs.explicit[k])
}

// GeneratedLogRecord returns generated record i (0 = oldest) of a kind as a
// JSON-shaped map, exactly as served; ok is false when out of range.
func (s *Server) GeneratedLogRecord(kind string, i int) (map[string]any, bool) {
	k, ok := kindIndex(kind)
	if !ok || i < 0 || int64(i) >= s.logs.count[k] {
		return nil, false
	}
	var m map[string]any
	_ = json.Unmarshal(mustJSON(s.logs.gen.record(k, int64(i), s.logs.genTime(k, int64(i)))), &m)
	return m, true
}

// LogRecords returns every record of a kind dated in [from, to), oldest
// first, generated and added merged, as JSON-shaped maps. Meant for small
// volumes in tests.
func (s *Server) LogRecords(kind string, from, to time.Time) []map[string]any {
	k, ok := kindIndex(kind)
	if !ok {
		return nil
	}
	ls := s.logs
	ls.mu.RLock()
	defer ls.mu.RUnlock()
	q := &logQuery{Kind: kind, From: ceilSec(from), To: ceilSec(to), Oldest: true}
	sc := ls.newScanner(k, q)
	g, e := sc.startPos()
	var out []map[string]any
	for {
		it, ng, ne, ok := sc.next(g, e)
		if !ok {
			return out
		}
		g, e = ng, ne
		var m map[string]any
		if it.gen {
			_ = json.Unmarshal(mustJSON(ls.gen.record(k, it.i, ls.genTime(k, it.i))), &m)
		} else {
			_ = json.Unmarshal(sc.exp[it.e].js, &m)
		}
		out = append(out, m)
	}
}

// LogWindow returns the span the generated records cover: [start, end).
func (s *Server) LogWindow() (start, end time.Time) {
	return time.Unix(s.logs.start, 0).UTC(), time.Unix(s.logs.start+s.logs.window, 0).UTC()
}
