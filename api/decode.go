package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return plugin.Errorf(plugin.EINVALID, "the request body must hold a single JSON value")
	}
	return nil
}

// jsonError turns an encoding/json error into an EINVALID that names the
// field when the decoder knows it.
func jsonError(err error) error {
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
			return plugin.Errorf(plugin.EINVALID, "the body must be a JSON %s, not %s", kindOf(typ.Type.Kind().String()), typ.Value)
		}
		return plugin.FieldError(typ.Field, "must be %s, not %s", kindOf(typ.Type.Kind().String()), typ.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return plugin.FieldError(strings.Trim(f, `"`), "is not a known field")
	}
	// Errors from a field's own UnmarshalJSON (durations) carry no field
	// name; their text describes the caller's own input only.
	msg = strings.TrimPrefix(msg, "json: ")
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return plugin.Errorf(plugin.EINVALID, "invalid request body: %s", msg)
}

func kindOf(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	}
	return fmt.Sprintf("a %s", k)
}
