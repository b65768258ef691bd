package plugin

import (
	"encoding/json"
	"testing"
	"time"
)

func TestValidURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://us-api.mimecast.com", true},
		{"https://10.1.2.3:8443/hook", true},
		{"http://127.0.0.1:9090", true},
		{"http://localhost:9090", true},
		{"http://[::1]:9090", true},
		{"http://us-api.mimecast.com", false},
		{"http://10.0.0.5/hook", false},
		{"https://169.254.169.254/latest", false},
		{"https://[fe80::1]/", false},
		{"https://0.0.0.0/", false},
		{"https://user:pw@us-api.mimecast.com", false},
		{"ftp://us-api.mimecast.com", false},
		{"us-api.mimecast.com", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if err := validURL(tt.url); (err == nil) != tt.ok {
				t.Errorf("validURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestCheckKeptSecrets(t *testing.T) {
	stored := Configuration{Name: "acme", Mimecast: MimecastSettings{BaseURL: "https://us-api.mimecast.com", Auth: AuthLegacy,
		AppID: "a", AppKey: "k", AccessKey: "x", SecretKey: "cw=="},
		Events:   &EventSettings{NudgeWebhook: &Webhook{URL: "https://hooks.example/n", Secret: "s"}},
		Controls: &ControlSettings{Okta: &OktaSettings{BaseURL: "https://acme.okta.com", ClientID: "c", PrivateKey: "pem"}, NotifyWebhook: &Webhook{URL: "https://hooks.example/c", Secret: "s2"}}}
	masked := stored.Redacted()
	tests := []struct {
		name   string
		change func(c *Configuration)
		field  string
	}{
		{"nothing moved", func(c *Configuration) {}, ""},
		{"same host, trailing slash", func(c *Configuration) { c.Mimecast.BaseURL += "/" }, ""},
		{"base url moved", func(c *Configuration) { c.Mimecast.BaseURL = "https://evil.example" }, "mimecast.app_key"},
		{"base url moved, secrets sent", func(c *Configuration) {
			c.Mimecast.BaseURL = "https://eu-api.mimecast.com"
			c.Mimecast.AppKey, c.Mimecast.AccessKey, c.Mimecast.SecretKey = "k2", "x2", "cw=="
		}, ""},
		{"auth changed", func(c *Configuration) { c.Mimecast.Auth = AuthOAuth2 }, "mimecast.app_key"},
		{"okta org moved", func(c *Configuration) { c.Controls.Okta.BaseURL = "https://evil.okta.com" }, "controls.okta.private_key"},
		{"okta client changed", func(c *Configuration) { c.Controls.Okta.ClientID = "other" }, "controls.okta.private_key"},
		{"nudge url moved", func(c *Configuration) { c.Events.NudgeWebhook.URL = "https://evil.example/n" }, "events.nudge_webhook.secret"},
		{"notify url moved", func(c *Configuration) { c.Controls.NotifyWebhook.URL = "https://evil.example/c" }, "controls.notify_webhook.secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := masked.Clone()
			tt.change(&c)
			err := c.CheckKeptSecrets(stored)
			var field string
			if e, ok := err.(*Error); ok {
				field = e.Field
			} else if err != nil {
				t.Fatalf("error %v is not *Error", err)
			}
			if field != tt.field {
				t.Errorf("CheckKeptSecrets: %v, want field %q", err, tt.field)
			}
		})
	}
}

func TestRuleEnabledDefaultsToTrue(t *testing.T) {
	tests := []struct {
		in      string
		enabled bool
		err     bool
	}{
		{`{"id":"r","log":"url","conditions":[],"user_field":"u","weight":5}`, true, false},
		{`{"id":"r","enabled":true}`, true, false},
		{`{"id":"r","enabled":false}`, false, false},
		{`{"id":"r","enabeld":false}`, false, true},
		{`{"id":"r","enabled":"no"}`, false, true},
	}
	for _, tt := range tests {
		var r Rule
		err := json.Unmarshal([]byte(tt.in), &r)
		if (err != nil) != tt.err || (err == nil && (r.Enabled != tt.enabled || r.ID != "r")) {
			t.Errorf("%s: rule %+v, err %v; want enabled %v, error %v", tt.in, r, err, tt.enabled, tt.err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"15m", 15 * time.Minute, false},
		{"720h", 720 * time.Hour, false},
		{"30d", 30 * 24 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"d", 0, true},
		{"-1d", 0, true},
		{"xd", 0, true},
		{"forever", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
