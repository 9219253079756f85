package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"callout/internal/callout"
)

// Sessions. The cookie carries 256 random bits; the database keeps only
// their SHA-256, like API tokens, so a copy of the database signs nobody in.
// Every session has its own CSRF token, rendered into each form and checked
// on every POST. The sign-in form, which has no session yet, is protected by
// a double-submit cookie instead.

const (
	sessionCookie = "callout_session"
	signinCookie  = "callout_signin"
	maxFormBytes  = 1 << 20
)

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *Handler) cookie(name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode}
}

// sessionHandler is a handler that runs for a signed-in user.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s *callout.Session)

// current returns the request's session, or nil when the browser is not
// signed in; err is a failure to look it up.
func (h *Handler) current(r *http.Request) (*callout.Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	s, err := h.accounts.Session(r.Context(), callout.HashToken(c.Value), h.svc.Now())
	if callout.ErrorKind(err) == callout.KindUnauthorized {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// page runs next for a signed-in user and sends anyone else to sign in,
// coming back here afterwards.
func (h *Handler) page(next sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		s, err := h.current(r)
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if s == nil {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next(w, r, s)
	})
}

// fragment is page for the parts a page reloads by itself: without a
// session it answers 401, and the script reloads the whole page.
func (h *Handler) fragment(next sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		s, err := h.current(r)
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if s == nil {
			http.Error(w, "sign in again", http.StatusUnauthorized)
			return
		}
		next(w, r, s)
	})
}

// form runs next for a POST of a signed-in user whose form carries the
// session's CSRF token.
func (h *Handler) form(next sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, r, nil, http.StatusRequestEntityTooLarge, "The form is too large to be accepted.")
			return
		}
		s, err := h.current(r)
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if s == nil {
			h.errorPage(w, r, nil, http.StatusUnauthorized, "Your session has ended, so nothing was saved. Sign in and try again.")
			return
		}
		if !sameToken(r.PostForm.Get("csrf"), s.CSRF) {
			h.log.Warn("form without a valid CSRF token", "path", r.URL.Path, "user", s.User.Name)
			h.errorPage(w, r, s, http.StatusForbidden, "This form has expired or did not come from this site, so nothing was saved. Go back, reload the page and try again.")
			return
		}
		next(w, r, s)
	})
}

// admin runs next only for a lab admin.
func (h *Handler) admin(next sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, s *callout.Session) {
		if s.User.Role != callout.RoleAdmin {
			h.errorPage(w, r, s, http.StatusForbidden, "Only a lab admin may see and change the lab's settings.")
			return
		}
		next(w, r, s)
	}
}

func sameToken(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func noStore(w http.ResponseWriter) {
	// Pages show patient data: never keep them in a shared cache or on disk.
	w.Header().Set("Cache-Control", "no-store")
}

// localPath returns next when it is plainly a path of this site, else "/",
// so that a sign-in link cannot send people elsewhere afterwards. Browsers
// are more lenient than net/url: they drop tabs and newlines anywhere in a
// URL, strip leading spaces and control characters, and read a backslash as
// a slash, so "/\t/evil.example" and "/\evil.example" both lead to
// evil.example. Hence next must be printable ASCII without a backslash,
// start with one slash (not two), and parse with no scheme, host or user;
// and its path, percent-decoded once, must pass the same test, in case a
// proxy or a framework decodes it before a browser sees it.
func localPath(next string) string {
	if !isLocalPath(next) {
		return "/"
	}
	return next
}

func isLocalPath(next string) bool {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return false
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	decoded := u.Path
	if !strings.HasPrefix(decoded, "/") || strings.HasPrefix(decoded, "//") ||
		strings.ContainsFunc(decoded, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return false
	}
	// Back to the sign-in page would be a loop.
	return decoded != "/signin" && !strings.HasPrefix(decoded, "/signin/")
}

type signinView struct {
	Name    string
	Next    string
	Token   string
	Message string
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if s, err := h.current(r); err == nil && s != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	v := signinView{Next: localPath(r.URL.Query().Get("next"))}
	if r.URL.Query().Has("out") {
		v.Message = "You are signed out."
	}
	h.renderSignin(w, r, http.StatusOK, v, "")
}

// renderSignin shows the sign-in form with a fresh double-submit token.
func (h *Handler) renderSignin(w http.ResponseWriter, r *http.Request, status int, v signinView, errMsg string) {
	v.Token = randomToken()
	http.SetCookie(w, h.cookie(signinCookie, v.Token, "/signin", 3600))
	h.render(w, r, status, "signin", &page{Title: "Sign in", Error: errMsg, Flash: v.Message, Data: v})
}

func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, nil, http.StatusBadRequest, "The sign-in form could not be read.")
		return
	}
	v := signinView{Name: strings.TrimSpace(r.PostForm.Get("name")), Next: localPath(r.PostForm.Get("next"))}
	c, err := r.Cookie(signinCookie)
	if err != nil || !sameToken(r.PostForm.Get("csrf"), c.Value) {
		h.renderSignin(w, r, http.StatusForbidden, v,
			"The sign-in form had expired. Please sign in again. (Your browser must accept cookies from this site.)")
		return
	}
	u, err := h.signIn.Attempt(r.Context(), callout.Attempt{Name: v.Name, Password: r.PostForm.Get("password"), Address: h.clientAddr(r)})
	if wait, ok := callout.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(callout.RetryAfterSeconds(wait)))
		h.renderSignin(w, r, http.StatusTooManyRequests, v, sentence(callout.ErrorMessage(err)))
		return
	}
	switch {
	case callout.ErrorKind(err) == callout.KindUnauthorized:
		h.renderSignin(w, r, http.StatusUnauthorized, v, "The user name or password is wrong.")
		return
	case err != nil && r.Context().Err() != nil:
		h.log.Info("sign-in abandoned by the client", "user", v.Name)
		return
	case err != nil:
		h.fail(w, r, nil, err)
		return
	}
	token, now := randomToken(), h.svc.Now()
	s := callout.Session{TokenHash: callout.HashToken(token), CSRF: randomToken(), User: u,
		CreatedAt: now, ExpiresAt: now.Add(h.session)}
	if err := h.accounts.CreateSession(r.Context(), s); err != nil {
		h.fail(w, r, nil, err)
		return
	}
	h.log.Info("signed in", "user", u.Name, "lab", u.LabID)
	http.SetCookie(w, h.cookie(signinCookie, "", "/signin", -1))
	http.SetCookie(w, h.cookie(sessionCookie, token, "/", int(h.session/time.Second)))
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request, s *callout.Session) {
	if err := h.accounts.DeleteSession(r.Context(), s.TokenHash); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.SetCookie(w, h.cookie(sessionCookie, "", "/", -1))
	http.Redirect(w, r, "/signin?out=1", http.StatusSeeOther)
}
