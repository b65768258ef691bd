package mimecast

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strings"
	"time"
)

// DateLayout is the x-mc-date layout of API 1.0. Always format a UTC time:
// a non-UTC location would print an offset instead of the literal "UTC".
const DateLayout = "Mon, 02 Jan 2006 15:04:05 UTC"

// FormatDate formats t as an x-mc-date header value (in UTC).
func FormatDate(t time.Time) string { return t.UTC().Format(DateLayout) }

// errSecretKey is deliberately vague: the key itself must never be quoted.
var errSecretKey = errors.New("the secret key is not standard base64 as Mimecast issues it")

// Sign returns the API 1.0 signature of one request: the standard base64 of
// HMAC-SHA1 keyed with the base64-decoded secretKey over
// "date:reqID:path:appKey" (spec §1.3, §1.4). path is the URI path only,
// e.g. /api/account/get-account. Keys are trimmed of surrounding white
// space. The Authorization header is then "MC " + accessKey + ":" + Sign(...).
func Sign(secretKey, appKey, date, reqID, path string) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secretKey))
	if err != nil || len(key) == 0 {
		return "", errSecretKey
	}
	mac := hmac.New(sha1.New, key)
	// One buffer, no intermediate strings.
	appKey = strings.TrimSpace(appKey)
	buf := make([]byte, 0, len(date)+len(reqID)+len(path)+len(appKey)+3)
	buf = append(buf, date...)
	buf = append(buf, ':')
	buf = append(buf, reqID...)
	buf = append(buf, ':')
	buf = append(buf, path...)
	buf = append(buf, ':')
	buf = append(buf, appKey...)
	mac.Write(buf)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
