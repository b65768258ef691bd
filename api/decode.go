package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"

	"mimecast-ure/plugin"
)

// decodeMode says how strict a body decode is.
type decodeMode int

const (
	// lenient ignores unknown fields: the platform may send more than we read.
	lenient decodeMode = iota
	// strict refuses unknown fields: an admin's typo must not pass silently.
	strict
)

// decode reads one JSON value from the request body into v. An empty body
// leaves v untouched when optional is true and is an EINVALID otherwise.
// Every failure is an *plugin.Error: EINVALID naming the field where
// possible, or ETOOLARGE when the body is over the cap.
func decode(c *gin.Context, v any, mode decodeMode, optional bool) error {
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		if optional {
			return nil
		}
		return plugin.Errorf(plugin.EINVALID, "a JSON body is required")
	}
	// Read the whole (capped) body first so an oversize body is always a
	// 413, whichever byte the decoder would have stopped at.
	raw, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return plugin.Errorf(plugin.ETOOLARGE, "the request body is over %d bytes", mbe.Limit)
		}
		return plugin.Errorf(plugin.EINVALID, "the request body could not be read")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if optional {
			return nil
		}
		return plugin.Errorf(plugin.EINVALID, "a JSON body is required")
	}
	return decodeBytes(raw, v, mode)
}

// decodeBytes is decode without the request: the part the fuzz tests drive.
func decodeBytes(raw []byte, v any, mode decodeMode) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if mode == strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return jsonError(err, reflect.TypeOf(v), raw)
	}
	if _, err := dec.Token(); err != io.EOF {
		return plugin.Errorf(plugin.EINVALID, "the request body must hold a single JSON value")
	}
	return nil
}

// jsonError turns an encoding/json error from decoding raw into a value of
// type root into an EINVALID that names the field by its JSON path
// ("mimecast.page_size", "records.uid") whenever it can be found.
func jsonError(err error, root reflect.Type, raw []byte) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		pe  *plugin.Error
	)
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &syn):
		return plugin.Errorf(plugin.EINVALID, "malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return plugin.Errorf(plugin.EINVALID, "malformed JSON: the body ends too early")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return plugin.Errorf(plugin.EINVALID, "the body %s", typeMessage(typ))
		}
		// The decoder's path leaves out map keys and holds the Go names of
		// embedded structs; find the value in the body instead, falling
		// back to the decoder's path without the Go names.
		path, ok := failingPath(root, raw, "", 0)
		if !ok || path == "" {
			path = jsonPath(root, typ.Field)
		}
		return plugin.FieldError(path, "%s", typeMessage(typ))
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return plugin.FieldError(strings.Trim(f, `"`), "is not a known field")
	}
	// Errors from a field's own UnmarshalJSON (durations) carry no field
	// name; their text describes the caller's own input only. The decoder
	// does not say where it stopped, so find the field by asking the same
	// UnmarshalJSON about each value of the body.
	msg = strings.TrimPrefix(msg, "json: ")
	if len(msg) > 200 {
		msg = msg[:200]
	}
	if path, ok := failingPath(root, raw, "", 0); ok && path != "" {
		return plugin.FieldError(path, "%s", msg)
	}
	return plugin.Errorf(plugin.EINVALID, "invalid request body: %s", msg)
}

// typeMessage says what a value that did not fit its field must be.
func typeMessage(typ *json.UnmarshalTypeError) string {
	if typ.Type == nil {
		return "has the wrong type"
	}
	// Value is the JSON kind, with the literal for numbers ("number 1e20").
	got, _, _ := strings.Cut(typ.Value, " ")
	k := typ.Type.Kind()
	if got == "number" {
		// A number, but not one the field can hold: a fraction, an
		// exponent, or out of the field's range.
		switch k {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			hi := int64(1)<<(typ.Type.Bits()-1) - 1
			return fmt.Sprintf("must be an integer in range (a whole number from %d to %d)", -hi-1, hi)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			hi := ^uint64(0) >> (64 - typ.Type.Bits())
			return fmt.Sprintf("must be an integer in range (a whole number from 0 to %d)", hi)
		case reflect.Float32, reflect.Float64:
			return "must be a number in range"
		}
	}
	return fmt.Sprintf("must be %s, not %s", kindOf(k), jsonKind(got))
}

// kindOf names the JSON value a Go kind reads, with its article.
func kindOf(k reflect.Kind) string {
	switch k {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a valid value"
}

// jsonKind names a JSON kind as encoding/json reports it, with its article.
func jsonKind(v string) string {
	switch v {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "a boolean"
	case "array":
		return "an array"
	case "object":
		return "an object"
	case "null":
		return "null"
	}
	return "another kind of value"
}

// jsonPath turns encoding/json's field path into the JSON path the caller
// wrote: the decoder puts the Go name of an embedded struct in the path
// ("recordsBody.records.uid"), which says nothing to the caller and leaks
// our Go names. Walking the type from root tells those segments apart.
func jsonPath(root reflect.Type, field string) string {
	segs := strings.Split(field, ".")
	out := make([]string, 0, len(segs))
	t := root
	for _, seg := range segs {
		t = elemOf(t)
		if t == nil {
			out = append(out, seg)
			continue
		}
		switch t.Kind() {
		case reflect.Struct:
			if f, ok := embeddedField(t, seg); ok {
				t = f.Type // a Go name only: not part of the JSON path
				continue
			}
			out = append(out, seg)
			if f, ok := namedField(t, seg); ok {
				t = f.Type
			} else {
				t = nil
			}
		case reflect.Map:
			out = append(out, seg)
			t = t.Elem()
		default:
			out = append(out, seg)
			t = nil
		}
	}
	return strings.Join(out, ".")
}

// elemOf looks through pointers, slices and arrays to the type whose
// fields a path names.
func elemOf(t reflect.Type) reflect.Type {
	for t != nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			t = t.Elem()
		default:
			return t
		}
	}
	return nil
}

// jsonName is the JSON name of a struct field, "" for an embedded struct
// whose fields are promoted, "-" for an ignored one.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name != "" {
		return name
	}
	if f.Anonymous && elemOf(f.Type) != nil && elemOf(f.Type).Kind() == reflect.Struct {
		return ""
	}
	return f.Name
}

// embeddedField finds the embedded struct whose Go name is name.
func embeddedField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Anonymous && f.Name == name && jsonName(f) == "" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// namedField finds the field of t itself whose JSON name is name.
func namedField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// keyField finds the field a JSON object key decodes into, looking through
// embedded structs, exact names first and then case-insensitively as
// encoding/json does. name is the field's JSON name.
func keyField(t reflect.Type, key string, fold bool, depth int) (f reflect.StructField, name string, ok bool) {
	if depth > 8 {
		return f, "", false
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		n := jsonName(sf)
		switch {
		case n == "":
			if inner, in, ok := keyField(elemOf(sf.Type), key, fold, depth+1); ok {
				return inner, in, true
			}
		case n == "-" || !sf.IsExported():
		case n == key || fold && strings.EqualFold(n, key):
			return sf, n, true
		}
	}
	return f, "", false
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// failingPath finds, in document order as encoding/json reads it, the
// first value of raw that does not decode into its place in a value of
// type t (a value of the wrong kind, a number out of range, one a type's
// own UnmarshalJSON refuses), and returns its JSON path: object keys and
// map keys joined by dots, array elements without an index
// ("records.uid"). It runs only after a failed decode, on a body already
// under the size cap.
func failingPath(t reflect.Type, raw []byte, path string, depth int) (string, bool) {
	if t == nil || depth > 32 {
		return "", false
	}
	isNull := bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
	for t.Kind() == reflect.Pointer {
		if isNull {
			return "", false
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		u := reflect.New(t).Interface().(json.Unmarshaler)
		return path, u.UnmarshalJSON(raw) != nil
	}
	if isNull {
		return "", false // null leaves any other value untouched
	}
	join := func(seg string) string {
		if path == "" {
			return seg
		}
		return path + "." + seg
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		dec := json.NewDecoder(bytes.NewReader(raw))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return path, true
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return "", false
			}
			key, _ := tok.(string)
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				return "", false
			}
			var (
				ft  reflect.Type
				seg = key
			)
			if t.Kind() == reflect.Map {
				ft = t.Elem()
			} else if f, name, ok := keyField(t, key, false, 0); ok {
				ft, seg = f.Type, name
			} else if f, name, ok := keyField(t, key, true, 0); ok {
				ft, seg = f.Type, name
			} else {
				continue // unknown fields are refused (strict) or ignored elsewhere
			}
			if p, ok := failingPath(ft, val, join(seg), depth+1); ok {
				return p, true
			}
		}
		return "", false
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			break // []byte reads a base64 string
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return path, true
		}
		for dec.More() {
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				return "", false
			}
			if p, ok := failingPath(t.Elem(), val, path, depth+1); ok {
				return p, true
			}
		}
		return "", false
	case reflect.Interface:
		return "", false
	}
	return path, json.Unmarshal(raw, reflect.New(t).Interface()) != nil
}
