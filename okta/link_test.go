package okta

import "testing"

func TestNextLink(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    string
	}{
		{"none", nil, ""},
		{"self only", []string{`<https://a.okta.com/api/v1/users?after=00u1&limit=2>; rel="self"`}, ""},
		{"separate headers", []string{`<https://a.okta.com/x?limit=2>; rel="self"`, `<https://a.okta.com/x?after=00u2&limit=2>; rel="next"`}, "https://a.okta.com/x?after=00u2&limit=2"},
		{"one header", []string{`<https://a.okta.com/x?limit=2>; rel="self", <https://a.okta.com/x?after=3>; rel="next"`}, "https://a.okta.com/x?after=3"},
		{"unquoted rel", []string{`<https://a.okta.com/x?after=4>;rel=next`}, "https://a.okta.com/x?after=4"},
		{"rel list", []string{`<https://a.okta.com/x?after=5>; rel="prev next"`}, "https://a.okta.com/x?after=5"},
		{"after only in self", []string{`<https://a.okta.com/x?after=6>; rel="self"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextLink(tt.headers); got != tt.want {
				t.Errorf("nextLink = %q, want %q", got, tt.want)
			}
		})
	}
}
