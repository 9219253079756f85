package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"callout/internal/callout"
)

// MaxBody is the largest request body accepted: an order of a few hundred
// reports is well below it.
const MaxBody = 1 << 20

// readBody reads the whole request body, refusing one over MaxBody.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, callout.Errorf(callout.KindTooLarge, "the request body is larger than %d bytes", MaxBody)
	}
	if err != nil {
		return nil, invalid("could not read the request body: %v", err)
	}
	return body, nil
}

// decode parses body as exactly one JSON value of v's type, refusing unknown
// fields and wrong types with a message that names the field.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return invalid("malformed JSON at byte %d: %v", syn.Offset, syn)
		case errors.As(err, &typ):
			field := typ.Field
			if field == "" {
				field = "the body"
			}
			return invalid("%s must be %s, not a JSON %s", field, kindOf(typ.Type.String()), typ.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return invalid("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return invalid("malformed JSON: the body ends too early")
		}
		return invalid("malformed JSON: %v", err)
	}
	if dec.More() {
		return invalid("malformed JSON: more than one value in the body")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return invalid("malformed JSON: unexpected data after the object")
	}
	return nil
}

// kindOf names a Go type the way a JSON client thinks of it.
func kindOf(goType string) string {
	switch {
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)+1))
	w.WriteHeader(status)
	w.Write(body)
	w.Write([]byte("\n"))
}
