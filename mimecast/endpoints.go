package mimecast

import (
	"context"
	"encoding/json"
	"fmt"

	"mimecast-ure/plugin"
)

// Endpoint paths (all POST).
const (
	PathGetAccount        = "/api/account/get-account"
	PathSafeScoreDetails  = "/api/awareness-training/company/get-safe-score-details"
	PathFindGroups        = "/api/directory/find-groups"
	PathCreateGroup       = "/api/directory/create-group"
	PathAddGroupMember    = "/api/directory/add-group-member"
	PathRemoveGroupMember = "/api/directory/remove-group-member"
	PathGetGroupMembers   = "/api/directory/get-group-members"
	PathURLLogs           = "/api/ttp/url/get-logs"
	PathAttachmentLogs    = "/api/ttp/attachment/get-logs"
	PathImpersonationLogs = "/api/ttp/impersonation/get-logs"
	PathDLPLogs           = "/api/dlp/get-logs"
)

// Mimecast error codes the client gives a meaning to.
const (
	CodeAlreadyMember    = "err_folder_group_member_already_exists"
	CodeNotMember        = "err_folder_email_address_not_found"
	CodeForbiddenForAddr = "err_xdk_operation_forbidden_for_address"
	CodeInvalidSignature = "err_xdk_invalid_signature"
	CodeBindingExpired   = "err_xdk_binding_expired"
	CodeForbidden        = "err_xdk_forbidden"
	reasonAlreadyMember  = "already a member"
	reasonNotMember      = "not a member"
	reasonNotManaged     = "address not managed by this Mimecast account"
	reasonNoResult       = "no result from Mimecast"
	causeSameToken       = "Mimecast returned the same page token twice"
)

// pageMeta is the request meta of a list call.
type pageMeta struct {
	Pagination struct {
		PageSize  int    `json:"pageSize"`
		PageToken string `json:"pageToken,omitempty"`
	} `json:"pagination"`
}

// body is a request envelope.
type body[T any] struct {
	Meta *pageMeta `json:"meta,omitempty"`
	Data []T       `json:"data"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only our own plain structs are marshalled
		panic(fmt.Sprintf("mimecast: marshal request: %v", err))
	}
	return b
}

// pages calls endpoint page after page, following meta.pagination.next,
// and hands each page's envelope to fn. recordsInData says the records
// are data[] itself (not wrapped in data[0]), to pre-size it. It stops on
// a missing or empty next token, on a page fn reports as empty, or on an
// error. A next token equal to the one just sent (Mimecast would answer
// the same page forever) and more than MaxPages pages are errors
// (KindUnavailable), never a silent success with repeated data.
func pages[T, D any](ctx context.Context, c *Client, endpoint string, pageSize int, data []D, recordsInData bool,
	fn func(env *envelope[T]) (records int, err error)) error {
	pageSize = clamp(pageSize, c.opts.PageSize, MaxPageSize)
	b := body[D]{Meta: &pageMeta{}, Data: data}
	hint := 0
	if recordsInData {
		hint = pageSize
	}
	if b.Data == nil {
		b.Data = []D{}
	}
	b.Meta.Pagination.PageSize = pageSize
	for page := 0; ; page++ {
		if page == c.opts.MaxPages {
			return &APIError{Kind: KindUnavailable, Endpoint: endpoint, Status: 200,
				cause: fmt.Sprintf("gave up after %d pages: Mimecast kept returning a next page token", page)}
		}
		env, err := call[T](ctx, c, request{endpoint: endpoint, body: mustJSON(b), idempotent: true, capHint: hint})
		if err != nil {
			if page > 0 {
				return fmt.Errorf("page %d: %w", page+1, err)
			}
			return err
		}
		n, err := fn(env)
		if err != nil {
			return err
		}
		next := env.Meta.Pagination.Next
		if next == "" || n == 0 {
			return nil
		}
		if next == b.Meta.Pagination.PageToken {
			return &APIError{Kind: KindUnavailable, Endpoint: endpoint, Status: 200,
				cause: fmt.Sprintf("%s (page %d)", causeSameToken, page+1)}
		}
		b.Meta.Pagination.PageToken = next
	}
}

// Account returns get-account (plugin.Account.HasAwareness tells whether
// the Awareness Training package is there).
func (c *Client) Account(ctx context.Context) (plugin.Account, error) {
	env, err := call[plugin.Account](ctx, c, request{endpoint: PathGetAccount, body: []byte(`{"data":[]}`), idempotent: true})
	if err != nil {
		return plugin.Account{}, err
	}
	if len(env.Data) == 0 {
		return plugin.Account{}, &APIError{Kind: KindUnavailable, Endpoint: PathGetAccount, Status: 200,
			cause: "the Mimecast response had no account"}
	}
	return env.Data[0], nil
}

// EachGradePage calls fn with every page of get-safe-score-details in
// order (pageSize records per call, 0 for the client's page size, at most
// 500). Each page's slice is fn's to keep. Empty pages are not passed.
func (c *Client) EachGradePage(ctx context.Context, pageSize int, fn func([]plugin.UserGrade) error) error {
	return pages(ctx, c, PathSafeScoreDetails, pageSize, []struct{}(nil), true,
		func(env *envelope[plugin.UserGrade]) (int, error) {
			if len(env.Data) == 0 {
				return 0, nil
			}
			return len(env.Data), fn(env.Data)
		})
}

// folder is a find-groups / create-group folder.
type folder struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Source      string `json:"source"`
	ParentID    string `json:"parentId"`
	UserCount   int    `json:"userCount"`
	FolderCount int    `json:"folderCount"`
}

func (f folder) group() plugin.Group {
	return plugin.Group{ID: f.ID, Name: f.Description, Source: f.Source, UserCount: f.UserCount}
}

// FindGroups returns the groups whose name (Mimecast's description)
// contains query, "" for all, following every page.
func (c *Client) FindGroups(ctx context.Context, query string) ([]plugin.Group, error) {
	type q struct {
		Query string `json:"query"`
	}
	var data []q
	if query != "" { // an empty query is err_validation_blank: send no item
		data = []q{{Query: query}}
	}
	var out []plugin.Group
	err := pages(ctx, c, PathFindGroups, directoryPageSize(c), data, false, func(env *envelope[struct {
		Folders []folder `json:"folders"`
	}]) (int, error) {
		n := 0
		for _, d := range env.Data {
			for _, f := range d.Folders {
				out = append(out, f.group())
			}
			n += len(d.Folders)
		}
		return n, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateGroup creates a root group named name. It is not retried after a
// failure that may have created the group (5xx, timeout): look it up with
// FindGroups before trying again.
func (c *Client) CreateGroup(ctx context.Context, name string) (plugin.Group, error) {
	type item struct {
		Description string `json:"description"`
	}
	env, err := call[folder](ctx, c, request{endpoint: PathCreateGroup, body: mustJSON(body[item]{Data: []item{{name}}})})
	if err != nil {
		return plugin.Group{}, err
	}
	if len(env.Data) == 0 || env.Data[0].ID == "" {
		return plugin.Group{}, &APIError{Kind: KindUnavailable, Endpoint: PathCreateGroup, Status: 200,
			cause: "the Mimecast response had no group"}
	}
	return env.Data[0].group(), nil
}

// GroupMembers lists the email addresses of the group's members, every
// page. Domain members (no address) are left out.
func (c *Client) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	type item struct {
		ID string `json:"id"`
	}
	var out []string
	err := pages(ctx, c, PathGetGroupMembers, directoryPageSize(c), []item{{groupID}}, false, func(env *envelope[struct {
		GroupMembers []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"groupMembers"`
	}]) (int, error) {
		n := 0
		for _, d := range env.Data {
			for _, m := range d.GroupMembers {
				if m.EmailAddress != "" {
					out = append(out, m.EmailAddress)
				}
			}
			n += len(d.GroupMembers)
		}
		return n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", groupID, err)
	}
	return out, nil
}

// MaxDirectoryPageSize caps the directory list calls (find-groups,
// get-group-members): clients are seen using 25 and 100 there, never more,
// so larger grade and log pages do not carry over to them.
const MaxDirectoryPageSize = 100

func directoryPageSize(c *Client) int { return min(c.opts.PageSize, MaxDirectoryPageSize) }
