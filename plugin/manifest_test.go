package plugin_test

import (
	"errors"
	"strings"
	"testing"

	"mimecast-ure/plugin"
)

func TestParseManifest(t *testing.T) {
	const good = `{"name":"M","id":"mimecast_ure","version":"1.0.0","description":"d","module":"URE",
		"configuration":[{"label":"Auth","key":"auth","type":"choice","choices":[{"key":"Legacy","value":"legacy"}],"default":"legacy","mandatory":true},
		{"label":"Key","key":"app_key","type":"password","mandatory":false}]}`
	if m, err := plugin.ParseManifest([]byte(good)); err != nil || m.ID != "mimecast_ure" || len(m.Configuration) != 2 {
		t.Fatalf("good manifest: %+v %v", m, err)
	}
	tests := []struct {
		name, from, to, field string
	}{
		{"no name", `"name":"M"`, `"name":""`, "name"},
		{"bad id", `"id":"mimecast_ure"`, `"id":"Mimecast URE"`, "id"},
		{"bad version", `"version":"1.0.0"`, `"version":"one"`, "version"},
		{"no description", `"description":"d"`, `"description":""`, "description"},
		{"duplicate key", `"key":"app_key"`, `"key":"auth"`, "configuration[1]"},
		{"unknown type", `"type":"password"`, `"type":"secret"`, "configuration[1]"},
		{"default not a choice", `"default":"legacy"`, `"default":"oauth3"`, "configuration[0]"},
		{"password default", `"type":"password","mandatory":false`, `"type":"password","default":"x","mandatory":false`, "configuration[1]"},
		{"unknown key", `"module":"URE"`, `"module":"URE","modul":"x"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := plugin.ParseManifest([]byte(strings.Replace(good, tt.from, tt.to, 1)))
			var pe *plugin.Error
			if !errors.As(err, &pe) || pe.Code != plugin.EINVALID || pe.Field != tt.field {
				t.Fatalf("got %v, want EINVALID on %q", err, tt.field)
			}
		})
	}
}
