package okta

import (
	"testing"

	"mimecast-ure/internal/oktatest"
)

// BenchmarkAssertion measures signing one client assertion per key kind.
func BenchmarkAssertion(b *testing.B) {
	for _, tt := range []struct {
		name string
		key  func(b *testing.B) string
	}{
		{"RS256", func(b *testing.B) string { return oktatest.PKCS1PEM(oktatest.NewRSAKey(b)) }},
		{"ES256", func(b *testing.B) string { return oktatest.SEC1PEM(b, oktatest.NewECKey(b)) }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			c, err := New(Options{BaseURL: "https://acme.okta.com", ClientID: "0oabench", PrivateKey: tt.key(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.assertion(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDPoPProof measures one resource-call proof (with ath).
func BenchmarkDPoPProof(b *testing.B) {
	c, err := New(Options{BaseURL: "https://acme.okta.com", ClientID: "0oabench", PrivateKey: oktatest.SEC1PEM(b, oktatest.NewECKey(b))})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.dpopProof("PUT", "https://acme.okta.com/api/v1/groups/00g1/users/00u1", "nonce", "token"); err != nil {
			b.Fatal(err)
		}
	}
}
