package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"callout/internal/callout"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// page is what every template gets: the layout's parts and the page's Data.
type page struct {
	Title   string
	Nav     string // the menu entry to mark current: "worklist" or "settings"
	Session *callout.Session
	Lab     string
	Flash   string // a success message
	Error   string // a plain-language error
	Data    any
}

// CSRF is the token the page's forms carry.
func (p *page) CSRF() string {
	if p.Session == nil {
		return ""
	}
	return p.Session.CSRF
}

// With returns a copy of the page carrying data, for a template that
// renders part of a page (the order's history) on its own as well.
func (p *page) With(data any) *page {
	c := *p
	c.Data = data
	return &c
}

// Admin reports whether the signed-in user is a lab admin.
func (p *page) Admin() bool { return p.Session != nil && p.Session.User.Role == callout.RoleAdmin }

type pages struct {
	byName map[string]*template.Template
}

// fragments are templates rendered alone, without the layout.
var fragments = map[string]string{"worklist-body": "worklist", "history": "bill"}

func loadPages(loc *time.Location) *pages {
	funcs := templateFuncs(loc)
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	p := &pages{byName: map[string]*template.Template{}}
	entries, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(strings.TrimPrefix(e, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		p.byName[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, e))
	}
	return p
}

// render writes a whole page, or a fragment of one.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	if p.Session != nil && p.Lab == "" {
		if set, err := h.svc.Settings(r.Context(), p.Session.User.Principal()); err == nil {
			p.Lab = set.Name
		}
	}
	tpl, exec := h.pages.byName[name], "layout.html"
	if owner, ok := fragments[name]; ok {
		tpl, exec = h.pages.byName[owner], name
	}
	var buf bytes.Buffer
	if err := tpl.ExecuteTemplate(&buf, exec, p); err != nil {
		h.log.Error("render page", "page", name, "err", err)
		http.Error(w, "The page could not be shown. Please reload it.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows msg as a page of its own.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, s *callout.Session, status int, msg string) {
	h.render(w, r, status, "error", &page{Title: http.StatusText(status), Session: s, Error: msg})
}

// fail shows err in plain words: the service's message for errors with a
// kind, a generic one (with the detail only in the log) otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *callout.Session, err error) {
	status, msg := errorStatus(err), callout.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		h.log.Error("page failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "Something went wrong on our side and nothing was changed. Please try again in a moment."
	}
	h.errorPage(w, r, s, status, sentence(msg))
}

// errorStatus maps an error's kind to an HTTP status, as the API does.
func errorStatus(err error) int {
	switch callout.ErrorKind(err) {
	case callout.KindInvalid:
		return http.StatusBadRequest
	case callout.KindUnprocessable:
		return http.StatusUnprocessableEntity
	case callout.KindNotFound:
		return http.StatusNotFound
	case callout.KindConflict:
		return http.StatusConflict
	case callout.KindUnauthorized:
		return http.StatusUnauthorized
	case callout.KindForbidden:
		return http.StatusForbidden
	case callout.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case callout.KindThrottled:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// sentence capitalises a service message and ends it with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	msg = fieldWords.Replace(msg)
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// fieldWords turns the API's field names in service messages into words.
var fieldWords = strings.NewReplacer("target_minutes", "the target time in minutes",
	"additional_instruction", "the standing instruction", "notified_person", "the person reached")

// staticHandler serves the embedded CSS and script. Their URLs carry a hash
// of the content, so they can be cached for long.
func staticHandler() http.Handler {
	fsys, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

var assetVersions = map[string]string{}

func init() {
	_ = fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		assetVersions[strings.TrimPrefix(path, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
}

func templateFuncs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"asset": func(name string) string { return "/static/" + name + "?v=" + assetVersions[name] },
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(loc).Format("02 Jan 2006 15:04")
		},
		"clock": func(t time.Time) string { return t.In(loc).Format("15:04:05") },
		// hhmm is a time of today as a lab says it ("06:52"), with the
		// date when it was another day.
		"hhmm": func(t time.Time) string {
			t = t.In(loc)
			if y, m, d := t.Date(); time.Now().In(loc).Format("2006-01-02") == fmt.Sprintf("%04d-%02d-%02d", y, m, d) {
				return t.Format("15:04")
			}
			return t.Format("02 Jan 15:04")
		},
		"isoTime":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"duration": durationText,
		"join":     strings.Join,
		"state":    stateLabel,
		// patientClass names an HL7 table 0004 code: "Emergency (E)".
		"patientClass": func(code string) string {
			if name := callout.PatientClasses[code]; name != "" {
				return name + " (" + code + ")"
			}
			return code
		},
		"stateClass": func(s callout.State) string {
			return strings.ToLower(stateLabel(s))
		},
		"dec": func(i int) int { return i - 1 },
		"inc": func(i int) int { return i + 1 },
		// tel makes a phone number a link a softphone or a tablet can
		// dial; only digits and "+" remain, so the URL is safe.
		"tel": func(phone string) template.URL {
			return template.URL("tel:" + strings.Map(func(r rune) rune {
				if r == '+' || r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, phone))
		},
	}
}

// stateLabel names a report state as the pages and the export do.
func stateLabel(s callout.State) string {
	switch s {
	case callout.StatePending:
		return "Pending"
	case callout.StateAttempted:
		return "Attempted"
	case callout.StateDone:
		return "Done"
	case callout.StateAbnormal:
		return "Abnormal"
	}
	return "Normal"
}

// durationText says how long something took, in the words a lab uses:
// "4 min", "1 h 5 min", "2 d 3 h".
func durationText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	m := int(d / time.Minute)
	switch {
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case m < 24*60:
		if m%60 == 0 {
			return fmt.Sprintf("%d h", m/60)
		}
		return fmt.Sprintf("%d h %d min", m/60, m%60)
	}
	return fmt.Sprintf("%d d %d h", m/(24*60), m%(24*60)/60)
}
