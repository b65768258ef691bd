package mimecast

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-resty/resty/v2"
)

// authorize sets the attempt's credentials: for API 1.0 a fresh date,
// request id and signature (every page and every retry gets new ones), for
// API 2.0 the cached bearer token. It returns the credential (for
// redaction) and, for 2.0, the token's generation.
// ctx is the call's context, actx the attempt's (with the timeout).
func (c *Client) authorize(ctx, actx context.Context, req *resty.Request, endpoint string) (string, uint64, *APIError) {
	if c.opts.Auth == "legacy" {
		date := FormatDate(c.opts.Now())
		reqID := c.opts.NewRequestID()
		sig, err := Sign(c.opts.SecretKey, c.opts.AppKey, date, reqID, c.basePath+endpoint)
		if err != nil {
			return "", 0, &APIError{Kind: KindInvalidCredentials, cause: err.Error()}
		}
		req.Header.Set("Authorization", "MC "+c.opts.AccessKey+":"+sig)
		req.Header.Set("x-mc-app-id", c.opts.AppID)
		req.Header.Set("x-mc-date", date)
		req.Header.Set("x-mc-req-id", reqID)
		return sig, 0, nil
	}
	tok, gen, e := c.accessToken(ctx, actx)
	if e != nil {
		return "", 0, e
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return tok, gen, nil
}

// cachedToken returns the token if it is still fresh.
func (c *Client) cachedToken() (string, uint64) {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	if c.token != "" && c.opts.Now().Before(c.tokenExp) {
		return c.token, c.tokenGen
	}
	return "", 0
}

// dropToken forgets the token of generation gen (a 401 rejected it) unless
// another goroutine already replaced it.
func (c *Client) dropToken(gen uint64) {
	c.tokenMu.Lock()
	if c.tokenGen == gen {
		c.token = ""
	}
	c.tokenMu.Unlock()
}

// accessToken returns a fresh API 2.0 token, minting one when the cache is
// empty or within 60 s of expiry. One fetch runs at a time; waiters reuse
// its token.
func (c *Client) accessToken(ctx, actx context.Context) (string, uint64, *APIError) {
	if tok, gen := c.cachedToken(); tok != "" {
		return tok, gen, nil
	}
	select {
	case c.tokenLock <- struct{}{}:
	case <-actx.Done():
		return "", 0, &APIError{Kind: KindUnavailable, Err: actx.Err(), retryable: ctx.Err() == nil,
			cause: "gave up waiting for a token: " + actx.Err().Error()}
	}
	defer func() { <-c.tokenLock }()
	if tok, gen := c.cachedToken(); tok != "" {
		return tok, gen, nil
	}
	return c.fetchToken(ctx, actx)
}

// tokenResponse is POST /oauth/token's answer.
type tokenResponse struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresIn   float64 `json:"expires_in"`
}

// tokenMargin is how long before expires_in the token is replaced.
const tokenMargin = 60 * time.Second

func (c *Client) fetchToken(ctx, actx context.Context) (string, uint64, *APIError) {
	form := url.Values{
		"client_id":     {c.opts.ClientID},
		"client_secret": {c.opts.ClientSecret},
		"grant_type":    {"client_credentials"},
	}
	req := c.http.R().SetContext(actx).SetDoNotParseResponse(true).SetBody([]byte(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := req.Post(c.base + endpointToken)
	if err != nil {
		c.observe(endpointToken, 0, time.Since(start))
		// Minting a token never changes state: always retryable.
		e := c.transportError(ctx, actx, request{endpoint: endpointToken, idempotent: true}, err, "")
		e.tokenErr = true
		return "", 0, e
	}
	raw := resp.RawResponse
	defer raw.Body.Close()
	c.noteRateHeaders(raw.Header)
	var body bytes.Buffer
	_, rerr := body.ReadFrom(io.LimitReader(raw.Body, 1<<20))
	c.observe(endpointToken, raw.StatusCode, time.Since(start))
	if rerr != nil {
		e := c.transportError(ctx, actx, request{endpoint: endpointToken, idempotent: true}, rerr, "")
		e.tokenErr, e.Status = true, raw.StatusCode
		return "", 0, e
	}
	if raw.StatusCode != http.StatusOK {
		e := c.statusError(request{endpoint: endpointToken, idempotent: true}, raw.StatusCode, raw.Header, body.Bytes())
		if raw.StatusCode == http.StatusBadRequest {
			// invalid_client / invalid_grant come back as 400.
			e.Kind = KindInvalidCredentials
		}
		e.oauth, e.tokenErr = true, true
		c.scrub(e, "")
		return "", 0, e
	}
	var tr tokenResponse
	if err := json.Unmarshal(body.Bytes(), &tr); err != nil {
		return "", 0, &APIError{Kind: KindUnavailable, Status: raw.StatusCode, tokenErr: true, retryable: true,
			cause: "the Mimecast token response was not valid JSON", Err: err}
	}
	if tr.AccessToken == "" {
		return "", 0, &APIError{Kind: KindUnavailable, Status: raw.StatusCode, tokenErr: true, retryable: true,
			cause: "the Mimecast token response had no access_token"}
	}
	life := time.Duration(tr.ExpiresIn * float64(time.Second))
	if life <= 0 {
		life = 1799 * time.Second // Mimecast's documented lifetime
	}
	margin := min(tokenMargin, life/2)
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	c.token = tr.AccessToken
	c.tokenGen++
	c.tokenExp = c.opts.Now().Add(life - margin)
	return c.token, c.tokenGen, nil
}
