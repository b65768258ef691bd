package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"mimecast-ure/plugin"
)

// Caller-safe messages that tell a missing user from a missing group.
const (
	msgUserNotFound  = "Okta user not found"
	msgGroupNotFound = "Okta group not found"
)

// call makes one API request through the retry loop and returns the
// answer when its status is 2xx.
func (c *Client) call(ctx context.Context, what, method, target string) (*response, error) {
	reauthed := false
	return c.retry(ctx, what, func(ctx context.Context) outcome {
		tok, err := c.token(ctx)
		if err != nil {
			return outcome{kind: permanent, err: err}
		}
		req, err := http.NewRequest(method, target, nil)
		if err != nil {
			return outcome{kind: permanent, err: plugin.Errorf(plugin.EINTERNAL, "bad Okta URL")}
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", tok.typ+" "+tok.value)
		if tok.typ == "DPoP" {
			c.mu.Lock()
			nonce := c.apiNonce
			c.mu.Unlock()
			proof, err := c.dpopProof(method, target, nonce, tok.value)
			if err != nil {
				return outcome{kind: permanent, err: err}
			}
			req.Header.Set("DPoP", proof)
		}
		res, err := c.send(ctx, req)
		if err != nil {
			return outcome{kind: retryable, err: err}
		}
		if res.status >= 200 && res.status < 300 {
			return outcome{kind: done, res: res}
		}
		if n := res.header.Get("DPoP-Nonce"); n != "" && strings.Contains(res.header.Get("WWW-Authenticate"), "use_dpop_nonce") {
			c.mu.Lock()
			c.apiNonce = n
			c.mu.Unlock()
			return outcome{kind: again, err: apiError(res, plugin.EUPSTREAMAUTH, "Okta refused the DPoP proof")}
		}
		switch {
		case res.status == http.StatusUnauthorized:
			ae := apiError(res, plugin.EUPSTREAMAUTH, "Okta refused the access token")
			if !reauthed {
				reauthed = true
				c.dropToken(tok.value)
				return outcome{kind: again, err: ae}
			}
			return outcome{kind: permanent, err: ae}
		case res.status == http.StatusForbidden:
			return outcome{kind: permanent, err: apiError(res, plugin.EUPSTREAMAUTH, "Okta denied the call (missing scope or admin role)")}
		case res.status == http.StatusNotFound:
			return outcome{kind: permanent, err: apiError(res, plugin.ENOTFOUND, "Okta resource not found")}
		case res.status == http.StatusTooManyRequests:
			return outcome{kind: limited, until: c.rateLimitUntil(res.header), err: apiError(res, plugin.ERATELIMITED, "Okta rate limit exceeded")}
		case res.status >= 500:
			return outcome{kind: retryable, err: apiError(res, plugin.EUNAVAILABLE, "Okta failed")}
		}
		return outcome{kind: permanent, err: apiError(res, plugin.EINVALID, "Okta refused the request")}
	})
}

// notFoundAs rewrites an ENOTFOUND answer's message to msg, keeping the
// rest of the error.
func notFoundAs(err error, msg string) error {
	var ae *APIError
	if plugin.ErrorCode(err) == plugin.ENOTFOUND {
		if asAPI(err, &ae) {
			ae.err = plugin.Errorf(plugin.ENOTFOUND, "%s", msg)
			return err
		}
		return fmt.Errorf("%w: %w", plugin.Errorf(plugin.ENOTFOUND, "%s", msg), err)
	}
	return err
}

type user struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Profile struct {
		Login string `json:"login"`
		Email string `json:"email"`
	} `json:"profile"`
}

type group struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
}

func (g group) plugin() plugin.Group {
	return plugin.Group{ID: g.ID, Name: g.Profile.Name, Source: g.Type}
}

// groupIDRE matches Okta group ids (00g followed by 17 characters).
var groupIDRE = regexp.MustCompile(`^00g[A-Za-z0-9]{17}$`)

// FindUser resolves a login or email to the user's id: a lookup by login
// first, then a search on profile.email that must match exactly one user.
// Deprovisioned users count as missing. ENOTFOUND "Okta user not found".
func (c *Client) FindUser(ctx context.Context, loginOrEmail string) (string, error) {
	login := strings.TrimSpace(loginOrEmail)
	if login == "" || strings.Contains(login, `"`) {
		return "", plugin.Errorf(plugin.EINVALID, "%q is not an Okta login", login)
	}
	if !strings.Contains(login, "/") {
		res, err := c.call(ctx, "find user", http.MethodGet, c.url("/api/v1/users/"+url.PathEscape(login), nil))
		switch {
		case err == nil:
			var u user
			if err := json.Unmarshal(res.body, &u); err != nil || u.ID == "" {
				return "", fmt.Errorf("okta: find user: %w", plugin.Errorf(plugin.EUNAVAILABLE, "Okta sent an unreadable user"))
			}
			if u.Status == "DEPROVISIONED" {
				return "", plugin.Errorf(plugin.ENOTFOUND, "%s (deprovisioned)", msgUserNotFound)
			}
			return u.ID, nil
		case plugin.ErrorCode(err) != plugin.ENOTFOUND:
			return "", err
		}
	}
	var found []user
	q := url.Values{"search": {fmt.Sprintf("profile.email eq %q", login)}, "limit": {fmt.Sprint(c.pageSize)}}
	err := c.pages(ctx, "search users", c.url("/api/v1/users", q), func(body []byte) error {
		var page []user
		if err := json.Unmarshal(body, &page); err != nil {
			return plugin.Errorf(plugin.EUNAVAILABLE, "Okta sent an unreadable user list")
		}
		for _, u := range page {
			if u.Status != "DEPROVISIONED" && (strings.EqualFold(u.Profile.Email, login) || strings.EqualFold(u.Profile.Login, login)) {
				found = append(found, u)
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case len(found) == 0:
		return "", plugin.Errorf(plugin.ENOTFOUND, "%s", msgUserNotFound)
	case len(found) > 1:
		return "", plugin.Errorf(plugin.ECONFLICT, "%d Okta users have that email", len(found))
	}
	return found[0].ID, nil
}

// FindGroup resolves a group by id (when idOrName looks like an Okta group
// id) or by exact, case-insensitive name. ENOTFOUND "Okta group not
// found"; ECONFLICT when several groups have that name.
func (c *Client) FindGroup(ctx context.Context, idOrName string) (plugin.Group, error) {
	name := strings.TrimSpace(idOrName)
	if name == "" || strings.Contains(name, `"`) {
		return plugin.Group{}, plugin.Errorf(plugin.EINVALID, "%q is not an Okta group id or name", name)
	}
	if groupIDRE.MatchString(name) {
		res, err := c.call(ctx, "get group", http.MethodGet, c.url("/api/v1/groups/"+url.PathEscape(name), nil))
		if err != nil {
			return plugin.Group{}, notFoundAs(err, msgGroupNotFound)
		}
		var g group
		if err := json.Unmarshal(res.body, &g); err != nil || g.ID == "" {
			return plugin.Group{}, fmt.Errorf("okta: get group: %w", plugin.Errorf(plugin.EUNAVAILABLE, "Okta sent an unreadable group"))
		}
		return g.plugin(), nil
	}
	var found []group
	q := url.Values{"search": {fmt.Sprintf("profile.name eq %q", name)}, "limit": {fmt.Sprint(c.pageSize)}}
	err := c.pages(ctx, "search groups", c.url("/api/v1/groups", q), func(body []byte) error {
		var page []group
		if err := json.Unmarshal(body, &page); err != nil {
			return plugin.Errorf(plugin.EUNAVAILABLE, "Okta sent an unreadable group list")
		}
		for _, g := range page {
			if strings.EqualFold(g.Profile.Name, name) {
				found = append(found, g)
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return plugin.Group{}, err
	case len(found) == 0:
		return plugin.Group{}, plugin.Errorf(plugin.ENOTFOUND, "%s", msgGroupNotFound)
	case len(found) > 1:
		return plugin.Group{}, plugin.Errorf(plugin.ECONFLICT, "%d Okta groups are named %q", len(found), name)
	}
	return found[0].plugin(), nil
}

// AddUserToGroup puts the user (Okta id) in the group (Okta id); Okta
// answers 204 whether or not the user was a member already.
func (c *Client) AddUserToGroup(ctx context.Context, groupID, userID string) error {
	return c.membership(ctx, "add user to group", http.MethodPut, groupID, userID)
}

// RemoveUserFromGroup takes the user out of the group (204 either way).
func (c *Client) RemoveUserFromGroup(ctx context.Context, groupID, userID string) error {
	return c.membership(ctx, "remove user from group", http.MethodDelete, groupID, userID)
}

func (c *Client) membership(ctx context.Context, what, method, groupID, userID string) error {
	if groupID == "" || userID == "" {
		return plugin.Errorf(plugin.EINVALID, "group and user ids are required")
	}
	_, err := c.call(ctx, what, method, c.url("/api/v1/groups/"+url.PathEscape(groupID)+"/users/"+url.PathEscape(userID), nil))
	if err != nil && plugin.ErrorCode(err) == plugin.ENOTFOUND {
		// Okta's summary ends "(User)" or "(UserGroup)"/"(Group)".
		msg := msgGroupNotFound
		var ae *APIError
		if asAPI(err, &ae) && strings.Contains(ae.Summary, "(User)") {
			msg = msgUserNotFound
		}
		return notFoundAs(err, msg)
	}
	return err
}

// GroupMembers lists the logins of the group's members, following every
// page.
func (c *Client) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	if groupID == "" {
		return nil, plugin.Errorf(plugin.EINVALID, "group id is required")
	}
	var out []string
	q := url.Values{"limit": {fmt.Sprint(c.pageSize)}}
	err := c.pages(ctx, "list group members", c.url("/api/v1/groups/"+url.PathEscape(groupID)+"/users", q), func(body []byte) error {
		var page []user
		if err := json.Unmarshal(body, &page); err != nil {
			return plugin.Errorf(plugin.EUNAVAILABLE, "Okta sent an unreadable member list")
		}
		for _, u := range page {
			out = append(out, u.Profile.Login)
		}
		return nil
	})
	if err != nil {
		return nil, notFoundAs(err, msgGroupNotFound)
	}
	return out, nil
}

// maxPages stops a list that never ends (a server bug) from looping.
const maxPages = 10000

// pages GETs target and every rel="next" page after it, calling fn with
// each body. A next link to another host is refused so the token never
// leaves the org.
func (c *Client) pages(ctx context.Context, what, target string, fn func([]byte) error) error {
	for n := 0; target != ""; n++ {
		if n >= maxPages {
			return plugin.Errorf(plugin.EUNAVAILABLE, "Okta list did not end after %d pages", maxPages)
		}
		res, err := c.call(ctx, what, http.MethodGet, target)
		if err != nil {
			return err
		}
		if err := fn(res.body); err != nil {
			return fmt.Errorf("okta: %s: %w", what, err)
		}
		target = nextLink(res.header.Values("Link"))
		if target != "" {
			u, err := url.Parse(target)
			if err != nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host {
				return fmt.Errorf("okta: %s: %w", what, plugin.Errorf(plugin.EUNAVAILABLE, "Okta sent a next link to another host"))
			}
		}
	}
	return nil
}

// nextLink returns the URL of the rel="next" entry of Link headers.
func nextLink(headers []string) string {
	for _, h := range headers {
		for _, part := range strings.Split(h, ",") {
			part = strings.TrimSpace(part)
			start, end := strings.Index(part, "<"), strings.Index(part, ">")
			if start != 0 || end < 0 {
				continue
			}
			for _, p := range strings.Split(part[end+1:], ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "rel") {
					for _, r := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
						if strings.EqualFold(r, "next") {
							return part[1:end]
						}
					}
				}
			}
		}
	}
	return ""
}

func asAPI(err error, target **APIError) bool { return errors.As(err, target) }
