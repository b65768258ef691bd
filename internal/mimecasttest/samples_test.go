package mimecasttest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sameShape checks that ours has every key of sample (recursively, except
// optional ones) with the same JSON type; arrays compare sample[0] with each
// of our elements.
func sameShape(t *testing.T, path string, sample, ours any, optional map[string]bool) {
	t.Helper()
	switch sv := sample.(type) {
	case map[string]any:
		ov, ok := ours.(map[string]any)
		if !ok {
			t.Errorf("%s: ours is %T, want an object", path, ours)
			return
		}
		for k, v := range sv {
			o, present := ov[k]
			if !present {
				if !optional[k] {
					t.Errorf("%s.%s: missing", path, k)
				}
				continue
			}
			sameShape(t, path+"."+k, v, o, optional)
		}
	case []any:
		ov, ok := ours.([]any)
		if !ok {
			t.Errorf("%s: ours is %T, want an array", path, ours)
			return
		}
		if len(sv) == 0 {
			return
		}
		for i, o := range ov {
			sameShape(t, fmt.Sprintf("%s[%d]", path, i), sv[0], o, optional)
		}
	case nil:
	default:
		if fmt.Sprintf("%T", sample) != fmt.Sprintf("%T", ours) {
			t.Errorf("%s: ours is %T (%v), sample has %T (%v)", path, ours, ours, sample, sample)
		}
	}
}

func loadSample(t *testing.T, name string) any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func TestRepliesMatchSpecSamples(t *testing.T) {
	e := newEnv(t, Options{Users: 60, LogVolume: map[string]int{KindURL: 300, KindAttachment: 300, KindImpersonation: 300, KindDLP: 300}})
	start, end := e.s.LogWindow()
	rng := map[string]any{"from": start.Format(time.RFC3339), "to": end.Format(time.RFC3339)}
	fin, _ := e.s.FindGroupByName("Finance")
	risky, _ := e.s.FindGroupByName("Risky Users - Remediation")
	users := e.s.Users()
	mem := func(id, email string) map[string]any { return map[string]any{"id": id, "emailAddress": email} }
	_, tok := e.token(DefaultClientID, DefaultClientSecret)

	tests := []struct {
		sample   string
		reply    func() *reply
		optional []string
	}{
		{"get-account.json", func() *reply { return e.post(PathGetAccount, nil) }, nil},
		{"get-safe-score-details-page1.json", func() *reply { return e.post(PathSafeScoreDetails, body(4, "")) }, nil},
		{"find-groups.json", func() *reply { return e.post(PathFindGroups, body(2, "")) }, nil},
		{"create-group.json", func() *reply {
			return e.post(PathCreateGroup, map[string]any{"data": []any{map[string]any{"description": "A_Cloud_Exchange"}}})
		}, nil},
		{"add-group-member-success.json", func() *reply {
			return e.post(PathAddGroupMember, map[string]any{"data": []any{mem(risky.ID, users[0].Email)}})
		}, nil},
		{"add-group-member-partial.json", func() *reply {
			return e.post(PathAddGroupMember, map[string]any{"data": []any{mem(risky.ID, users[1].Email), mem(risky.ID, users[0].Email), mem(risky.ID, "new.hire@example.com")}})
		}, nil},
		{"remove-group-member-success.json", func() *reply {
			return e.post(PathRemoveGroupMember, map[string]any{"data": []any{mem(risky.ID, users[0].Email)}})
		}, nil},
		{"remove-group-member-not-found.json", func() *reply {
			return e.post(PathRemoveGroupMember, map[string]any{"data": []any{mem(risky.ID, "zed.nobody@example.com")}})
		}, nil},
		{"get-group-members.json", func() *reply { return e.post(PathGetGroupMembers, body(25, "", map[string]any{"id": fin.ID})) }, nil},
		{"ttp-url-get-logs.json", func() *reply { return e.post(PathURLLogs, body(50, "", rng)) }, []string{"tagMap"}},
		{"ttp-attachment-get-logs.json", func() *reply { return e.post(PathAttachmentLogs, body(50, "", rng)) }, nil},
		{"ttp-impersonation-get-logs.json", func() *reply { return e.post(PathImpersonationLogs, body(50, "", rng)) }, nil},
		{"dlp-get-logs.json", func() *reply { return e.post(PathDLPLogs, body(50, "", rng)) }, nil},
		{"error-401-invalid-signature.json", func() *reply {
			return e.post(PathGetAccount, nil, withHeader("Authorization", "MC "+DefaultAccessKey+":AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
		}, nil},
		{"error-418-binding-expired.json", func() *reply {
			e.s.SetFaults(Faults{BindingExpireAfter: 1})
			e.post(PathGetAccount, nil)
			defer e.s.ClearFaults()
			return e.post(PathGetAccount, nil)
		}, nil},
		{"error-validation-blank.json", func() *reply { return e.post(PathFindGroups, body(10, "", map[string]any{"query": ""})) }, nil},
		{"oauth-token.json", func() *reply { return &reply{status: 200, raw: mustJSON(tok)} }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.sample, func(t *testing.T) {
			r := tc.reply()
			var ours any
			if err := json.Unmarshal(r.raw, &ours); err != nil {
				t.Fatalf("reply is not JSON: %v", err)
			}
			sample := loadSample(t, tc.sample)
			if m, ok := sample.(map[string]any); ok {
				if meta, ok := m["meta"].(map[string]any); ok {
					if st, ok := meta["status"].(float64); ok && int(st) != r.status && r.status != 0 {
						t.Errorf("HTTP status %d, sample meta.status %v", r.status, st)
					}
				}
			}
			opt := map[string]bool{}
			for _, o := range tc.optional {
				opt[o] = true
			}
			sameShape(t, "$", sample, ours, opt)
		})
	}
}
