package httpapi

import (
	"net/http"

	"callout/internal/callout"
)

// statusOf is the one map from error kind to HTTP status.
var statusOf = map[callout.Kind]int{
	callout.KindInvalid:       http.StatusBadRequest,
	callout.KindUnprocessable: http.StatusUnprocessableEntity,
	callout.KindNotFound:      http.StatusNotFound,
	callout.KindConflict:      http.StatusConflict,
	callout.KindUnauthorized:  http.StatusUnauthorized,
	callout.KindForbidden:     http.StatusForbidden,
	callout.KindTooLarge:      http.StatusRequestEntityTooLarge,
	callout.KindThrottled:     http.StatusTooManyRequests,
	callout.KindInternal:      http.StatusInternalServerError,
}

// errorBody is the shape of every error answer:
// {"error":{"code":"…","message":"…"}}.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers err with its status and a message a person can act on.
// Only internal errors are logged with their detail; users never see it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind := callout.ErrorKind(err)
	status, ok := statusOf[kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status == http.StatusInternalServerError {
		if r.Context().Err() != nil {
			s.log.Warn("request ended early", "method", r.Method, "path", r.URL.Path, "err", err)
		} else {
			s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		kind = callout.KindInternal
	}
	var body errorBody
	body.Error.Code = string(kind)
	body.Error.Message = callout.ErrorMessage(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="callout"`)
	}
	writeJSON(w, status, body)
}

func invalid(format string, args ...any) error {
	return callout.Errorf(callout.KindInvalid, format, args...)
}
