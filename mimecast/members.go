package mimecast

import (
	"context"
	"encoding/json"
	"fmt"

	"mimecast-ure/plugin"
)

// memberItem is one add/remove-group-member request item, also the shape
// of the key echoed in fail[] and of a success item in data[].
type memberItem struct {
	ID           string `json:"id"`
	EmailAddress string `json:"emailAddress"`
}

// AddMembers adds emails to the group in calls of BatchSize members and
// returns one result per address in input order: Done, Skipped "already a
// member", or Failed with Mimecast's reason. On an error of a whole call
// it returns the results of the calls before it and the error.
func (c *Client) AddMembers(ctx context.Context, groupID string, emails []string) ([]plugin.MemberResult, error) {
	return c.members(ctx, PathAddGroupMember, groupID, emails, 0, CodeAlreadyMember, reasonAlreadyMember)
}

// RemoveMembers removes emails from the group like AddMembers; "not a
// member" is Skipped.
func (c *Client) RemoveMembers(ctx context.Context, groupID string, emails []string) ([]plugin.MemberResult, error) {
	return c.members(ctx, PathRemoveGroupMember, groupID, emails, c.opts.RemoveBodyLimit, CodeNotMember, reasonNotMember)
}

func (c *Client) members(ctx context.Context, endpoint, groupID string, emails []string, bodyLimit int, skipCode, skipReason string) ([]plugin.MemberResult, error) {
	out := make([]plugin.MemberResult, 0, len(emails))
	items := make([]memberItem, 0, min(len(emails), c.opts.BatchSize))
	for start := 0; start < len(emails); {
		items = items[:0]
		size := len(`{"data":[]}`)
		for _, e := range emails[start:min(start+c.opts.BatchSize, len(emails))] {
			it := memberItem{ID: groupID, EmailAddress: e}
			if bodyLimit > 0 {
				n := len(mustJSON(it))
				if len(items) > 0 {
					n++ // the comma
					if size+n > bodyLimit {
						break
					}
				}
				size += n
			}
			items = append(items, it)
		}
		chunk := emails[start : start+len(items)]
		start += len(items)
		env, err := call[memberItem](ctx, c, request{
			endpoint: endpoint, body: mustJSON(body[memberItem]{Data: items}),
			idempotent: true, perItem: true,
		})
		if err != nil {
			return out, fmt.Errorf("group %s, members %d-%d of %d: %w", groupID, start-len(chunk)+1, start, len(emails), err)
		}
		out = append(out, memberResults(chunk, env, skipCode, skipReason)...)
	}
	return out, nil
}

// memberResults maps a call's data[] and keyed fail[] back to the chunk's
// addresses through emailAddress (case-insensitively), in input order.
func memberResults(chunk []string, env *envelope[memberItem], skipCode, skipReason string) []plugin.MemberResult {
	byEmail := make(map[string]plugin.MemberResult, len(chunk))
	for _, d := range env.Data {
		if d.EmailAddress != "" {
			byEmail[plugin.NormalizeEmail(d.EmailAddress)] = plugin.MemberResult{Status: plugin.Done}
		}
	}
	for _, f := range env.Fail {
		var key memberItem
		if json.Unmarshal(f.Key, &key) != nil || key.EmailAddress == "" {
			continue
		}
		e := f.first()
		r := plugin.MemberResult{Status: plugin.Failed, Code: e.Code, Reason: e.Message}
		switch e.Code {
		case skipCode:
			r.Status, r.Reason = plugin.Skipped, skipReason
		case CodeForbiddenForAddr:
			r.Reason = reasonNotManaged
		}
		if r.Reason == "" {
			r.Reason = e.Code
		}
		if r.Reason == "" {
			r.Reason = "Mimecast reported a failure without a reason"
		}
		byEmail[plugin.NormalizeEmail(key.EmailAddress)] = r
	}
	out := make([]plugin.MemberResult, len(chunk))
	for i, email := range chunk {
		r, ok := byEmail[plugin.NormalizeEmail(email)]
		if !ok {
			r = plugin.MemberResult{Status: plugin.Failed, Reason: reasonNoResult}
		}
		r.Email = email
		out[i] = r
	}
	return out
}
