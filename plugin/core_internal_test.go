package plugin

import (
	"strings"
	"testing"
)

func TestValidEmail(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"alice@acme.com", true},
		{"a.b+tag@mail.acme.co.uk", true},
		{"o'neil@acme.com", true},
		{"alice", false},
		{"@acme.com", false},
		{"alice@", false},
		{"alice@acme", false},
		{"a@b@acme.com", false},
		{"alice smith@acme.com", false},
		{"alice@acme..com", false},
		{"alice@-acme.com", false},
		{"alice@acme_x.com", false},
		{"<alice@acme.com>", false},
		{strings.Repeat("a", 65) + "@acme.com", false},
		{"alice@" + strings.Repeat("a", 250) + ".com", false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			if got := validEmail(tc.in); got != tc.want {
				t.Errorf("validEmail(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheckAction(t *testing.T) {
	cases := []struct {
		name  string
		a     Action
		field string // "" means valid
	}{
		{"generate", Action{Value: "generate"}, ""},
		{"add id", Action{Value: "add", Parameters: map[string]string{"group": " g1 "}}, ""},
		{"add create", Action{Value: "add", Parameters: map[string]string{"group": "create", "name": " Risky "}}, ""},
		{"empty value", Action{}, "action.value"},
		{"unknown", Action{Value: "purge"}, "action.value"},
		{"no group", Action{Value: "remove"}, "action.parameters.group"},
		{"remove create", Action{Value: "remove", Parameters: map[string]string{"group": "create", "name": "x"}}, "action.parameters.group"},
		{"create blank", Action{Value: "add", Parameters: map[string]string{"group": "create"}}, "action.parameters.name"},
		{"create control char", Action{Value: "add", Parameters: map[string]string{"group": "create", "name": "a\nb"}}, "action.parameters.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkAction(tc.a)
			var pe *Error
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.field != "" && (err == nil || !asErr(err, &pe) || pe.Field != tc.field):
				t.Fatalf("error = %v, want field %s", err, tc.field)
			}
			if tc.field == "" && got.Parameters["group"] != strings.TrimSpace(tc.a.Parameters["group"]) {
				t.Errorf("group not trimmed: %q", got.Parameters["group"])
			}
		})
	}
	// The caller's map is not changed.
	p := map[string]string{"group": " g "}
	checkAction(Action{Value: "add", Parameters: p})
	if p["group"] != " g " {
		t.Errorf("checkAction modified the caller's parameters")
	}
}

func asErr(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

func TestRequestHashDependsOnEverything(t *testing.T) {
	a := Action{Value: "add", Parameters: map[string]string{"group": "g"}}
	h := requestHash(a, []string{"a@x.com"})
	if h != requestHash(Action{Value: "add", Parameters: map[string]string{"group": "g"}}, []string{"a@x.com"}) {
		t.Errorf("same request, different hash")
	}
	for _, other := range []string{
		requestHash(Action{Value: "remove", Parameters: a.Parameters}, []string{"a@x.com"}),
		requestHash(Action{Value: "add", Parameters: map[string]string{"group": "h"}}, []string{"a@x.com"}),
		requestHash(a, []string{"b@x.com"}),
		requestHash(a, []string{"a@x.com", "a@x.com"}),
	} {
		if other == h {
			t.Errorf("different request, same hash")
		}
	}
}
