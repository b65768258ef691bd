package api

import "strings"

// RoutesForTest lists every registered route as "METHOD /path/{param}".
func (s *Server) RoutesForTest() []string {
	var out []string
	for _, r := range s.engine.Routes() {
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") {
				parts[i] = "{" + p[1:] + "}"
			}
		}
		out = append(out, r.Method+" "+strings.Join(parts, "/"))
	}
	return out
}

// DecodeForTest exposes the body decoder to the fuzz tests.
func DecodeForTest(raw []byte, v any, strictFields bool) error {
	mode := lenient
	if strictFields {
		mode = strict
	}
	return decodeBytes(raw, v, mode)
}
