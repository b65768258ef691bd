package api

import (
	"reflect"
	"testing"
)

// TestJSONPathDropsGoNames: the fallback path (the decoder's own) loses the
// Go names of embedded structs and keeps everything else.
func TestJSONPathDropsGoNames(t *testing.T) {
	root := reflect.TypeOf(&actionBody{})
	for _, tt := range []struct{ in, want string }{
		{"recordsBody.records", "records"},
		{"recordsBody.records.uid", "records.uid"},
		{"action.parameters", "action.parameters"},
		{"action.value", "action.value"},
		{"unknown.path", "unknown.path"},
	} {
		if got := jsonPath(root, tt.in); got != tt.want {
			t.Errorf("jsonPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
