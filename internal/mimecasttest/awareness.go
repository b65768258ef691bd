package mimecasttest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

var basePackages = []string{
	"Journal Services [1053]",
	"Threat Remediation [1075]",
	"Advanced MTA (Site) [1002]",
	"Attachment Protection (Pro) [1059]",
	"Secure Email Gateway (Site) [1039]",
	"Content Control and Data Leak Prevention (Site) [1013]",
	"Attachment Protection (Site) [1056]",
	"URL Protection (Site) [1043]",
	"Enhanced Logging [1061]",
	"Impersonation Protection [1060]",
	"Mimecast Platform [1033]",
	"Internal Email Protect [1064]",
}

// AwarenessPackage is the get-account package string that enables the
// awareness endpoints for clients.
const AwarenessPackage = "Awareness Training [1078]"

func (s *Server) handleGetAccount(_ *apiRequest) (int, []byte) {
	pk := append([]string{}, basePackages...)
	if !s.opts.NoAwarenessPackage {
		pk = append(pk, AwarenessPackage)
	}
	pk = append(pk, "BYO: Threat Intelligence [1089]")
	s.tmu.RLock()
	n := len(s.users)
	s.tmu.RUnlock()
	acct := map[string]any{
		"region":                          "us",
		"archive":                         false,
		"gateway":                         true,
		"passphrase":                      "",
		"supportCode":                     "6747",
		"maxRetention":                    30,
		"maxRetentionConfirmed":           true,
		"minRetentionEnabled":             false,
		"automatedSegmentPurge":           true,
		"type":                            "full",
		"policyInheritance":               false,
		"databaseCode":                    "usterm13",
		"searchReason":                    false,
		"contentAdministratorDefaultView": "Metadata",
		"adminSessionTimeout":             60,
		"exportApi":                       false,
		"exgestAllowQuery":                false,
		"exgestAllowExtraction":           true,
		"expressAccount":                  false,
		"cybergraphV2Enabled":             false,
		"accountCode":                     "CUSA12A345",
		"accountName":                     "Example Corp (emulator)",
		"adminEmail":                      "",
		"contactEmail":                    "it-admin@" + s.opts.Domain,
		"domain":                          "",
		"userCount":                       n,
		"mimecastId":                      "01-0102-00236",
		"contactName":                     "Jane Admin",
		"telephone":                       "5555550100",
		"packages":                        pk,
	}
	return okBody([]any{acct}, nil, nil)
}

type userCursor struct {
	Kind  string `json:"k"`
	Grade string `json:"g,omitempty"`
	Email string `json:"e,omitempty"`
	Name  string `json:"n,omitempty"`
	Dept  string `json:"d,omitempty"`
	Pos   int    `json:"p"`
}

func (c userCursor) filtered() bool {
	return c.Grade != "" || c.Email != "" || c.Name != "" || c.Dept != ""
}

func (c userCursor) match(u *userRec) bool {
	if c.Grade != "" && !strings.EqualFold(u.Risk, c.Grade) {
		return false
	}
	if c.Email != "" && !containsFold(u.Email, c.Email) {
		return false
	}
	if c.Name != "" && !containsFold(u.Name, c.Name) {
		return false
	}
	if c.Dept != "" && !containsFold(u.Department, c.Dept) {
		return false
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// parseUserFilters reads filterBy [{fieldName:"type", value:<grade>}] and
// searchBy [{fieldName:"email"|"name"|"department", value}].
func parseUserFilters(item map[string]any) (userCursor, *failEntry) {
	c := userCursor{Kind: "users"}
	for _, list := range []string{"filterBy", "searchBy"} {
		raw, ok := item[list]
		if !ok || raw == nil {
			continue
		}
		arr, ok := raw.([]any)
		if !ok {
			f := validationFail(item, list, "err_validation_invalid_type", "This field must be an array")
			return c, &f
		}
		for _, e := range arr {
			m, _ := e.(map[string]any)
			name, _, _ := field(m, "fieldName")
			val, _, _ := field(m, "value")
			if val == "" {
				f := blankFail(item, "value")
				return c, &f
			}
			switch {
			case list == "filterBy" && name == "type":
				c.Grade = val
			case list == "searchBy" && name == "email":
				c.Email = val
			case list == "searchBy" && name == "name":
				c.Name = val
			case list == "searchBy" && name == "department":
				c.Dept = val
			default:
				f := validationFail(item, "fieldName", "err_validation_invalid_value", "Unsupported fieldName")
				return c, &f
			}
		}
	}
	return c, nil
}

func (s *Server) handleSafeScoreDetails(req *apiRequest) (int, []byte) {
	var c userCursor
	if req.pageToken != "" {
		if err := decodeToken(req.pageToken, &c); err != nil || c.Kind != "users" || c.Pos < 0 {
			return badTokenBody(req.pageToken)
		}
	} else {
		var f *failEntry
		if c, f = parseUserFilters(firstItem(req)); f != nil {
			return okBody([]any{}, []failEntry{*f}, nil)
		}
	}
	s.tmu.RLock()
	defer s.tmu.RUnlock()
	total := len(s.users)
	if c.filtered() {
		total = 0
		for _, u := range s.users {
			if c.match(u) {
				total++
			}
		}
	}
	var buf bytes.Buffer
	buf.Grow(req.pageSize * 260)
	buf.WriteByte('[')
	n, i := 0, c.Pos
	for ; i < len(s.users) && n < req.pageSize; i++ {
		if !c.match(s.users[i]) {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(s.users[i].js)
		n++
	}
	buf.WriteByte(']')
	p := &pagination{PageSize: req.pageSize, TotalCount: total}
	for ; i < len(s.users); i++ {
		if c.match(s.users[i]) {
			c.Pos = i
			p.Next = encodeToken(c)
			break
		}
	}
	return http.StatusOK, encodeEnvelope(meta{Status: http.StatusOK, Pagination: p}, json.RawMessage(buf.Bytes()), nil)
}

func (s *Server) handleSafeScoreSummary(_ *apiRequest) (int, []byte) {
	counts := map[string]int{"a": 0, "b": 0, "c": 0, "d": 0, "f": 0}
	s.tmu.RLock()
	for _, u := range s.users {
		if k := strings.ToLower(u.Risk); len(k) == 1 {
			if _, ok := counts[k]; ok {
				counts[k]++
			}
		}
	}
	s.tmu.RUnlock()
	return okBody([]any{map[string]any{"scoreCounts": counts}}, nil, nil)
}
