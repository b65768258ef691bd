package okta

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"mimecast-ure/plugin"
)

// accessToken is a cached token; typ is "Bearer" or "DPoP".
type accessToken struct {
	value string
	typ   string
	exp   time.Time
}

// assertion signs a fresh client assertion (RFC 7523) for the token URL.
func (c *Client) assertion() (string, error) {
	now := c.now()
	claims := jwt.MapClaims{
		"iss": c.clientID,
		"sub": c.clientID,
		"aud": c.tokenURL,
		"iat": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
		"jti": uuid.NewString(),
	}
	t := jwt.NewWithClaims(c.key.method, claims)
	if c.key.kid != "" {
		t.Header["kid"] = c.key.kid
	}
	s, err := t.SignedString(c.key.key)
	if err != nil {
		return "", plugin.Errorf(plugin.EINTERNAL, "cannot sign the Okta client assertion")
	}
	return s, nil
}

// dpopProof signs a DPoP proof (RFC 9449) for one request with the
// client's ephemeral key; accessToken is empty on the token endpoint.
func (c *Client) dpopProof(method, target, nonce, accessToken string) (string, error) {
	c.mu.Lock()
	if c.dpopSigner == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err == nil {
			c.dpopSigner, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
				(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
		}
		if err != nil {
			c.mu.Unlock()
			return "", plugin.Errorf(plugin.EINTERNAL, "cannot create a DPoP key")
		}
		c.dpopKey = k
	}
	signer := c.dpopSigner
	c.mu.Unlock()
	u, err := url.Parse(target)
	if err != nil {
		return "", plugin.Errorf(plugin.EINTERNAL, "bad Okta URL")
	}
	claims := map[string]any{
		"htm": method,
		// Okta compares htu with the decoded path, without query.
		"htu": u.Scheme + "://" + u.Host + u.Path,
		"iat": c.now().Unix(),
		"jti": uuid.NewString(),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	s, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", plugin.Errorf(plugin.EINTERNAL, "cannot sign a DPoP proof")
	}
	return s, nil
}

// token returns a valid access token, fetching one when the cache is
// empty or within tokenMargin of expiry.
func (c *Client) token(ctx context.Context) (accessToken, error) {
	if t, ok := c.cached(); ok {
		return t, nil
	}
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	if t, ok := c.cached(); ok {
		return t, nil
	}
	res, err := c.retry(ctx, "token request", c.tokenAttempt)
	if err != nil {
		return accessToken{}, err
	}
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil || body.AccessToken == "" {
		return accessToken{}, fmt.Errorf("okta: token request: %w", plugin.Errorf(plugin.EUNAVAILABLE, "Okta sent an unreadable token answer"))
	}
	if body.ExpiresIn <= 0 {
		body.ExpiresIn = 3600
	}
	t := accessToken{value: body.AccessToken, typ: body.TokenType, exp: c.now().Add(time.Duration(body.ExpiresIn) * time.Second)}
	if !strings.EqualFold(t.typ, "DPoP") {
		t.typ = "Bearer"
	} else {
		t.typ = "DPoP"
	}
	c.mu.Lock()
	c.tok = t
	c.mu.Unlock()
	return t, nil
}

func (c *Client) cached() (accessToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.value != "" && c.now().Before(c.tok.exp.Add(-tokenMargin)) {
		return c.tok, true
	}
	return accessToken{}, false
}

// dropToken forgets the cached token (Okta refused it).
func (c *Client) dropToken(value string) {
	c.mu.Lock()
	if c.tok.value == value {
		c.tok = accessToken{}
	}
	c.mu.Unlock()
}

// tokenAttempt is one POST to the token endpoint, with a fresh assertion
// (and a fresh DPoP proof when DPoP is on).
func (c *Client) tokenAttempt(ctx context.Context) outcome {
	assertion, err := c.assertion()
	if err != nil {
		return outcome{kind: permanent, err: err}
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {c.scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequest(http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return outcome{kind: permanent, err: plugin.Errorf(plugin.EINTERNAL, "bad Okta token URL")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	c.mu.Lock()
	useDPoP, nonce := c.dpop, c.tokenNonce
	c.mu.Unlock()
	if useDPoP {
		proof, err := c.dpopProof(http.MethodPost, c.tokenURL, nonce, "")
		if err != nil {
			return outcome{kind: permanent, err: err}
		}
		req.Header.Set("DPoP", proof)
	}
	res, err := c.send(ctx, req)
	if err != nil {
		return outcome{kind: retryable, err: err}
	}
	if res.status == http.StatusOK {
		return outcome{kind: done, res: res}
	}
	switch {
	case res.status == http.StatusTooManyRequests:
		return outcome{kind: limited, until: c.rateLimitUntil(res.header), err: apiError(res, plugin.ERATELIMITED, "Okta rate limit exceeded")}
	case res.status >= 500:
		return outcome{kind: retryable, err: apiError(res, plugin.EUNAVAILABLE, "Okta token endpoint failed")}
	}
	ae := apiError(res, plugin.EUPSTREAMAUTH, "Okta refused the token request")
	switch ae.OAuth {
	case "invalid_dpop_proof":
		c.mu.Lock()
		switched := !c.dpop
		c.dpop = true
		if n := res.header.Get("DPoP-Nonce"); n != "" {
			c.tokenNonce = n
			switched = true
		}
		c.mu.Unlock()
		if switched {
			return outcome{kind: again, err: ae}
		}
	case "use_dpop_nonce":
		if n := res.header.Get("DPoP-Nonce"); n != "" {
			c.mu.Lock()
			c.dpop, c.tokenNonce = true, n
			c.mu.Unlock()
			return outcome{kind: again, err: ae}
		}
	}
	return outcome{kind: permanent, err: ae}
}

// Ping obtains an access token, proving the client id, key and scopes.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.token(ctx)
	return err
}
