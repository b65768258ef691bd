package mimecast

import (
	"context"
	"errors"
	"iter"

	"mimecast-ure/plugin"
)

// errStop ends a callback pull when the range loop stops early.
var errStop = errors.New("mimecast: iteration stopped")

// GradePages ranges over the pages of get-safe-score-details:
//
//	for page, err := range c.GradePages(ctx, 500) { ... }
//
// An error is yielded once, last. Breaking out stops the pull.
func (c *Client) GradePages(ctx context.Context, pageSize int) iter.Seq2[[]plugin.UserGrade, error] {
	return func(yield func([]plugin.UserGrade, error) bool) {
		err := c.EachGradePage(ctx, pageSize, func(p []plugin.UserGrade) error {
			if !yield(p, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(nil, err)
		}
	}
}

// LogPages ranges over the pages of one security log like EachLogPage.
func (c *Client) LogPages(ctx context.Context, kind plugin.LogKind, q plugin.LogQuery) iter.Seq2[plugin.LogPage, error] {
	return func(yield func(plugin.LogPage, error) bool) {
		err := c.EachLogPage(ctx, kind, q, func(p plugin.LogPage) error {
			if !yield(p, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(plugin.LogPage{}, err)
		}
	}
}
