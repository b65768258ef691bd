package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
)

// Manifest is the plugin's manifest.json, in the platform's schema
// (name, id, version, description, module, configuration[]).
type Manifest struct {
	Name           string          `json:"name"`
	ID             string          `json:"id"`
	Version        string          `json:"version"`
	Description    string          `json:"description"`
	Module         string          `json:"module,omitempty"`
	MinimumVersion string          `json:"minimum_version,omitempty"`
	Type           []string        `json:"type,omitempty"`
	Configuration  []ManifestField `json:"configuration"`
}

// ManifestField is one configuration[] entry. Default is any JSON value
// (a number for number fields, a list for multichoice).
type ManifestField struct {
	Label       string        `json:"label"`
	Key         string        `json:"key"`
	Type        string        `json:"type"`
	Default     any           `json:"default,omitempty"`
	Mandatory   bool          `json:"mandatory"`
	Description string        `json:"description,omitempty"`
	Placeholder string        `json:"placeholder,omitempty"`
	Choices     []FieldChoice `json:"choices,omitempty"`
}

var (
	manifestIDRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	semverRE      = regexp.MustCompile(`^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$`)
	manifestTypes = map[string]bool{"text": true, "password": true, "number": true, "choice": true, "multichoice": true, "textarea": true, "boolean": true}
)

// ParseManifest reads and checks a manifest: the top-level keys are
// present, the version is semantic, every configuration key is unique and
// typed, and every choice field has choices that include its default.
// Unknown keys are refused so a typo does not pass. Errors are EINVALID
// naming the field.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, Errorf(EINVALID, "manifest: %v", err)
	}
	switch {
	case m.Name == "":
		return Manifest{}, FieldError("name", "manifest: is required")
	case !manifestIDRE.MatchString(m.ID):
		return Manifest{}, FieldError("id", "manifest: must be lower-case letters, digits and _")
	case !semverRE.MatchString(m.Version):
		return Manifest{}, FieldError("version", "manifest: must be a semantic version such as 1.0.0")
	case m.Description == "":
		return Manifest{}, FieldError("description", "manifest: is required")
	case len(m.Configuration) == 0:
		return Manifest{}, FieldError("configuration", "manifest: needs at least one field")
	}
	seen := map[string]bool{}
	for i, f := range m.Configuration {
		at := fmt.Sprintf("configuration[%d]", i)
		switch {
		case f.Key == "" || f.Label == "":
			return Manifest{}, FieldError(at, "manifest: key and label are required")
		case seen[f.Key]:
			return Manifest{}, FieldError(at, "manifest: duplicate key %q", f.Key)
		case !manifestTypes[f.Type]:
			return Manifest{}, FieldError(at, "manifest: unknown type %q", f.Type)
		}
		seen[f.Key] = true
		if f.Type == "choice" || f.Type == "multichoice" {
			if len(f.Choices) == 0 {
				return Manifest{}, FieldError(at, "manifest: %s needs choices", f.Key)
			}
			if d, ok := f.Default.(string); ok && d != "" && !hasChoice(f.Choices, d) {
				return Manifest{}, FieldError(at, "manifest: default %q of %s is not a choice", d, f.Key)
			}
		}
		if f.Type == "password" && f.Default != nil {
			return Manifest{}, FieldError(at, "manifest: password field %s must not have a default", f.Key)
		}
	}
	return m, nil
}

func hasChoice(cs []FieldChoice, v string) bool {
	for _, c := range cs {
		if c.Value == v {
			return true
		}
	}
	return false
}
