package mimecasttest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"time"
)

// DateLayout is the only x-mc-date layout accepted (spec §1.5).
const DateLayout = "Mon, 02 Jan 2006 15:04:05 UTC"

type authKind int

const (
	authNone authKind = iota
	authHMAC
	authBearer
)

type replayEntry struct {
	id     string
	expiry time.Time
}

// Sign returns the API 1.0 Authorization header value for the given inputs
// (spec §1.3–1.4). It is exported so tests of other packages can build a
// reference request; the emulator itself verifies with the same function.
func Sign(accessKey, secretKey, appKey, date, reqID, path string) (string, error) {
	key, err := base64.StdEncoding.DecodeString(secretKey)
	if err != nil {
		return "", err
	}
	return "MC " + accessKey + ":" + signature(key, appKey, date, reqID, path), nil
}

func signature(key []byte, appKey, date, reqID, path string) string {
	mac := hmac.New(sha1.New, key)
	mac.Write([]byte(date + ":" + reqID + ":" + path + ":" + appKey))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func equalConst(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func authFail(status int, code, message string) (authKind, int, []byte) {
	return authNone, status, errorBody(status, code, message, false)
}

// authenticate checks API 1.0 or 2.0 credentials. On refusal it returns the
// status and body to send; on success body is nil.
func (s *Server) authenticate(r *http.Request) (authKind, int, []byte) {
	auth := r.Header.Get("Authorization")
	if len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ") {
		return s.checkBearer(strings.TrimSpace(auth[7:]))
	}
	appID := r.Header.Get("x-mc-app-id")
	date := r.Header.Get("x-mc-date")
	reqID := r.Header.Get("x-mc-req-id")
	if auth == "" || appID == "" || date == "" || reqID == "" {
		return authFail(http.StatusBadRequest, "err_xdk_missing_credentials", "0001 Credentials Missing From Request")
	}
	if !strings.HasPrefix(auth, "MC ") {
		return authFail(http.StatusUnauthorized, "err_xdk_authentication_type_not_supported", "0001 Authentication Type Not Supported")
	}
	cred := auth[len("MC "):]
	colon := strings.LastIndexByte(cred, ':')
	if colon < 0 {
		return authFail(http.StatusUnauthorized, "err_xdk_invalid_signature", "0004 Invalid Signature")
	}
	accessKey, sig := cred[:colon], cred[colon+1:]
	if !equalConst(appID, s.opts.AppID) {
		return authFail(http.StatusUnauthorized, "err_developer_key", "Invalid Application ID")
	}
	if !equalConst(accessKey, s.opts.AccessKey) {
		return authFail(http.StatusUnauthorized, "err_xdk_invalid_access_key", "Invalid Access Key")
	}
	t, err := time.Parse(DateLayout, date)
	if err != nil || t.Format(DateLayout) != date {
		return authFail(http.StatusUnauthorized, "err_xdk_invalid_date", "Invalid Date Header Format")
	}
	now := s.opts.Now()
	if skew := now.Sub(t); skew > s.opts.MaxSkew || -skew > s.opts.MaxSkew {
		return authFail(http.StatusUnauthorized, "err_xdk_date_header_too_skewed", "Date Header Too Skewed")
	}
	want := signature(s.secret, s.opts.AppKey, date, reqID, r.URL.Path)
	if !equalConst(sig, want) {
		return authFail(http.StatusUnauthorized, "err_xdk_invalid_signature", "0004 Invalid Signature")
	}
	if !s.rememberRequestID(strings.ToLower(reqID), t.Add(s.opts.MaxSkew+time.Second), now) {
		return authFail(http.StatusUnauthorized, "err_xdk_request_id_reused", "Request ID Already Used")
	}
	return authHMAC, http.StatusOK, nil
}

// rememberRequestID records id until expiry; false if it was already used.
// Memory is bounded by Options.ReplayIDs: expired ids are dropped first,
// then the oldest.
func (s *Server) rememberRequestID(id string, expiry, now time.Time) bool {
	s.amu.Lock()
	defer s.amu.Unlock()
	if exp, ok := s.replay[id]; ok && now.Before(exp) {
		return false
	}
	head := 0
	for head < len(s.replayQ) {
		e := s.replayQ[head]
		if now.Before(e.expiry) && len(s.replay) < s.opts.ReplayIDs {
			break
		}
		if exp, ok := s.replay[e.id]; ok && exp.Equal(e.expiry) {
			delete(s.replay, e.id)
		}
		head++
	}
	if head > 0 {
		s.replayQ = append(s.replayQ[:0], s.replayQ[head:]...)
	}
	s.replay[id] = expiry
	s.replayQ = append(s.replayQ, replayEntry{id: id, expiry: expiry})
	return true
}

func tokenKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return string(sum[:])
}

func (s *Server) checkBearer(tok string) (authKind, int, []byte) {
	s.amu.Lock()
	defer s.amu.Unlock()
	k := tokenKey(tok)
	exp, ok := s.tokens[k]
	if !ok {
		return authFail(http.StatusUnauthorized, "err_xdk_invalid_token", "Invalid Bearer Token")
	}
	if !s.opts.Now().Before(exp) {
		delete(s.tokens, k)
		return authFail(http.StatusUnauthorized, "err_xdk_token_expired", "Bearer Token Expired")
	}
	return authBearer, http.StatusOK, nil
}

// RevokeTokens forgets every bearer token issued so far.
func (s *Server) RevokeTokens() {
	s.amu.Lock()
	defer s.amu.Unlock()
	s.tokens = map[string]time.Time{}
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// handleToken is POST /oauth/token (client credentials, form-encoded);
// errors use the RFC 6749 §5.2 shape.
func (s *Server) handleToken(r *http.Request) (int, []byte) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return http.StatusBadRequest, mustJSON(oauthError{"invalid_request", "Content-Type must be application/x-www-form-urlencoded"})
	}
	r.Body = http.MaxBytesReader(nil, r.Body, DefaultMaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return http.StatusBadRequest, mustJSON(oauthError{"invalid_request", "malformed form body"})
	}
	f := r.PostForm
	id, secret, grant := f.Get("client_id"), f.Get("client_secret"), f.Get("grant_type")
	if id == "" || secret == "" || grant == "" {
		return http.StatusBadRequest, mustJSON(oauthError{"invalid_request", "client_id, client_secret and grant_type are required"})
	}
	if grant != "client_credentials" {
		return http.StatusBadRequest, mustJSON(oauthError{"unsupported_grant_type", "only client_credentials is supported"})
	}
	idOK := equalConst(id, s.opts.ClientID)
	secretOK := equalConst(secret, s.opts.ClientSecret)
	if !idOK || !secretOK {
		return http.StatusUnauthorized, mustJSON(oauthError{"invalid_client", "client authentication failed"})
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	tok := base64.RawURLEncoding.EncodeToString(raw)
	now := s.opts.Now()
	s.amu.Lock()
	for k, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, k)
		}
	}
	s.tokens[tokenKey(tok)] = now.Add(s.opts.TokenTTL)
	s.amu.Unlock()
	body, _ := json.Marshal(map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.TokenTTL / time.Second),
		"scope":        "",
	})
	return http.StatusOK, body
}
