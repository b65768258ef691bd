package mimecast

import (
	"context"

	"mimecast-ure/plugin"
)

// logData is data[0] of the four log endpoints; each fills one key.
type logData struct {
	ClickLogs         []plugin.LogRecord `json:"clickLogs"`
	AttachmentLogs    []plugin.LogRecord `json:"attachmentLogs"`
	ImpersonationLogs []plugin.LogRecord `json:"impersonationLogs"`
	DLPLogs           []plugin.LogRecord `json:"dlpLogs"`
}

func (d logData) records(kind plugin.LogKind) []plugin.LogRecord {
	switch kind {
	case plugin.LogURL:
		return d.ClickLogs
	case plugin.LogAttachment:
		return d.AttachmentLogs
	case plugin.LogImpersonation:
		return d.ImpersonationLogs
	case plugin.LogDLP:
		return d.DLPLogs
	}
	return nil
}

// logFilter is data[0] of a log request. Route is the URL and attachment
// logs' singular filter, Routes the DLP log's array.
type logFilter struct {
	From        string   `json:"from,omitempty"`
	To          string   `json:"to,omitempty"`
	OldestFirst bool     `json:"oldestFirst"`
	Route       string   `json:"route,omitempty"`
	Routes      []string `json:"routes,omitempty"`
	// ScanResult (URL) and Result (attachment) are sent as "all" so the
	// API's undocumented default cannot hide malicious records.
	ScanResult string `json:"scanResult,omitempty"`
	Result     string `json:"result,omitempty"`
}

// LogPath returns the endpoint of a log kind and the data[0] key holding
// its records.
func LogPath(kind plugin.LogKind) (path, recordsKey string, ok bool) {
	switch kind {
	case plugin.LogURL:
		return PathURLLogs, "clickLogs", true
	case plugin.LogAttachment:
		return PathAttachmentLogs, "attachmentLogs", true
	case plugin.LogImpersonation:
		return PathImpersonationLogs, "impersonationLogs", true
	case plugin.LogDLP:
		return PathDLPLogs, "dlpLogs", true
	}
	return "", "", false
}

// EachLogPage calls fn with every non-empty page of one security log for
// q: from/to are sent as 2006-01-02T15:04:05-0700 in UTC, the route filter
// as `route` (URL, attachment) or `routes` (DLP; impersonation has none).
// Records are raw, numbers decoded as float64. Page.Next is the token of
// the following page, "" on the last.
func (c *Client) EachLogPage(ctx context.Context, kind plugin.LogKind, q plugin.LogQuery, fn func(plugin.LogPage) error) error {
	path, _, ok := LogPath(kind)
	if !ok {
		return plugin.FieldError("log", "unknown Mimecast log %q", kind)
	}
	f := logFilter{OldestFirst: q.OldestFirst}
	switch kind {
	case plugin.LogURL:
		f.ScanResult = "all"
	case plugin.LogAttachment:
		f.Result = "all"
	}
	if !q.From.IsZero() {
		f.From = FormatTime(q.From)
	}
	if !q.To.IsZero() {
		f.To = FormatTime(q.To)
	}
	if q.Route != "" {
		switch kind {
		case plugin.LogURL, plugin.LogAttachment:
			f.Route = q.Route
		case plugin.LogDLP:
			f.Routes = []string{q.Route}
		}
	}
	return pages(ctx, c, path, q.PageSize, []logFilter{f}, false, func(env *envelope[logData]) (int, error) {
		var recs []plugin.LogRecord
		for i, d := range env.Data {
			if i == 0 { // the usual single item: no copy
				recs = d.records(kind)
				continue
			}
			recs = append(recs, d.records(kind)...)
		}
		if len(recs) == 0 {
			return 0, nil
		}
		return len(recs), fn(plugin.LogPage{Records: recs, Next: env.Meta.Pagination.Next})
	})
}
