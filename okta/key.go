package okta

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"mimecast-ure/plugin"
)

// keyField is the configuration field a bad key is reported against.
const keyField = "controls.okta.private_key"

// signingKey is a parsed client-assertion key with the algorithm it implies.
type signingKey struct {
	key    crypto.Signer
	method jwt.SigningMethod
	kid    string
}

// ParsePrivateKey reports whether s is a usable Okta private key: PEM
// PKCS#1, PKCS#8 or SEC1 (RSA of at least 2048 bits, or EC P-256/384/521),
// or a private JWK (or a JWKS holding one). The error is an EINVALID
// *plugin.Error naming controls.okta.private_key and never quotes the key.
func ParsePrivateKey(s string) error {
	_, err := parseKey(s)
	return err
}

func parseKey(s string) (*signingKey, error) {
	s = strings.TrimSpace(s)
	// Keys pasted through JSON or env files often carry literal "\n".
	s = strings.ReplaceAll(s, `\n`, "\n")
	if s == "" {
		return nil, plugin.FieldError(keyField, "is required")
	}
	if strings.HasPrefix(s, "{") {
		return parseJWK(s)
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, plugin.FieldError(keyField, "is neither a PEM private key nor a JWK")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, plugin.FieldError(keyField, "must not be encrypted")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, plugin.FieldError(keyField, "PEM block %q is not a private key (want RSA PRIVATE KEY, PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		// x509's messages describe the structure, never the key bytes.
		return nil, plugin.FieldError(keyField, "cannot parse the %s block: %v", block.Type, err)
	}
	return signerFor(key, "")
}

func parseJWK(s string) (*signingKey, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(s), &probe); err != nil {
		return nil, plugin.FieldError(keyField, "is not valid JWK JSON")
	}
	var jwk jose.JSONWebKey
	if probe.Keys != nil {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(s), &set); err != nil {
			return nil, plugin.FieldError(keyField, "is not a valid JWK set")
		}
		found := false
		for _, k := range set.Keys {
			if !k.IsPublic() {
				jwk, found = k, true
				break
			}
		}
		if !found {
			return nil, plugin.FieldError(keyField, "the JWK set holds no private key")
		}
	} else if err := jwk.UnmarshalJSON([]byte(s)); err != nil {
		return nil, plugin.FieldError(keyField, "is not a valid JWK")
	}
	if jwk.IsPublic() || !jwk.Valid() {
		return nil, plugin.FieldError(keyField, "the JWK is not a private key")
	}
	return signerFor(jwk.Key, jwk.KeyID)
}

// signerFor picks the JWS algorithm from the key: RSA -> RS256, EC ->
// ES256/384/512 by curve.
func signerFor(key any, kid string) (*signingKey, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, plugin.FieldError(keyField, "RSA keys must have at least 2048 bits")
		}
		return &signingKey{key: k, method: jwt.SigningMethodRS256, kid: kid}, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return &signingKey{key: k, method: jwt.SigningMethodES256, kid: kid}, nil
		case elliptic.P384():
			return &signingKey{key: k, method: jwt.SigningMethodES384, kid: kid}, nil
		case elliptic.P521():
			return &signingKey{key: k, method: jwt.SigningMethodES512, kid: kid}, nil
		}
		return nil, plugin.FieldError(keyField, "EC keys must use P-256, P-384 or P-521")
	}
	return nil, plugin.FieldError(keyField, "must be an RSA or EC private key")
}
