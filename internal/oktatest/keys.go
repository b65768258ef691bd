package oktatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// NewRSAKey returns a fresh 2048-bit RSA key (emulator test keys only).
func NewRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := GenerateRSAKey()
	if err != nil {
		tb.Fatalf("generate RSA key: %v", err)
	}
	return k
}

// NewECKey returns a fresh P-256 key.
func NewECKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate EC key: %v", err)
	}
	return k
}

// GenerateRSAKey returns a fresh 2048-bit RSA key (for the demo command).
func GenerateRSAKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }

// PKCS1PEM encodes an RSA key as "RSA PRIVATE KEY".
func PKCS1PEM(k *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// PKCS8PEM encodes an RSA or EC key as "PRIVATE KEY".
func PKCS8PEM(tb testing.TB, k any) string {
	tb.Helper()
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatalf("marshal PKCS#8: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b}))
}

// SEC1PEM encodes an EC key as "EC PRIVATE KEY".
func SEC1PEM(tb testing.TB, k *ecdsa.PrivateKey) string {
	tb.Helper()
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		tb.Fatalf("marshal SEC1: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: b}))
}

// PrivateJWK encodes an RSA or EC private key as a JWK with kid.
func PrivateJWK(tb testing.TB, k any, kid string) string {
	tb.Helper()
	b, err := jose.JSONWebKey{Key: k, KeyID: kid, Use: "sig"}.MarshalJSON()
	if err != nil {
		tb.Fatalf("marshal JWK: %v", err)
	}
	return string(b)
}
