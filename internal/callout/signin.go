package callout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Sign-in throttling. Failed sign-ins are counted against the user name
// typed and against the client's address; after SignInFreeFailures
// consecutive failures of either, every attempt is refused without checking
// the password until a wait has passed since the last failure: 1 s, doubling
// with each further failure, at most 5 minutes. A success resets both
// counters, and a counter with no failure for a day starts again from zero.
// The counters live in the database, so several processes serving one
// database share them.
const (
	SignInFreeFailures = 5
	SignInFirstWait    = time.Second
	SignInMaxWait      = 5 * time.Minute
	// SignInForgetAfter is how long a counter without new failures lasts.
	SignInForgetAfter = 24 * time.Hour
)

// CategorySignIn marks a refused sign-in of one of the lab's users in its
// activity log.
const CategorySignIn = 650

// SignInWait returns how long after its last failure a user name or an
// address with the given number of consecutive failures is refused.
func SignInWait(failures int) time.Duration {
	if failures < SignInFreeFailures {
		return 0
	}
	doublings := failures - SignInFreeFailures
	if doublings >= 30 || SignInFirstWait<<doublings >= SignInMaxWait {
		return SignInMaxWait
	}
	return SignInFirstWait << doublings
}

// ThrottleKey is what failed sign-ins are counted against.
type ThrottleKey struct {
	Kind  string // ThrottleUser or ThrottleAddress
	Value string
}

// The kinds of throttle key.
const (
	ThrottleUser    = "user"
	ThrottleAddress = "address"
)

// ThrottleCount is a key's run of consecutive failures as stored.
type ThrottleCount struct {
	Key         ThrottleKey
	Failures    int
	LastFailure time.Time
}

// SignInFailure is one refused sign-in: the counters it adds to and its
// audit entries, written in one transaction.
type SignInFailure struct {
	At       time.Time
	UserName string // as typed (a possible user name)
	Address  string // the client's address
	LabID    int64  // the lab of the user so named; 0 when there is none
	Reason   string // SignInUnknownUser or SignInWrongPassword
	// Keys are the counters to add one failure to. A counter whose last
	// failure is before ForgetBefore starts again from one.
	Keys         []ThrottleKey
	ForgetBefore time.Time
	// Activity is the entry for the lab's activity log; nil when the
	// name is nobody's.
	Activity *Activity
}

// Reasons a sign-in is refused, as audited.
const (
	SignInUnknownUser   = "unknown_user"
	SignInWrongPassword = "wrong_password"
)

// SignInStore is what signing in needs from storage.
type SignInStore interface {
	// UserByName returns the user with the given name, or an error of
	// kind not found.
	UserByName(ctx context.Context, name string) (User, error)
	// ThrottleCounts returns the counters of those keys that have one.
	ThrottleCounts(ctx context.Context, keys []ThrottleKey) ([]ThrottleCount, error)
	// RecordSignInFailure adds one failure to each of f.Keys and writes
	// f's audit entries, in one transaction.
	RecordSignInFailure(ctx context.Context, f SignInFailure) error
	// ClearThrottle removes the counters of keys.
	ClearThrottle(ctx context.Context, keys []ThrottleKey) error
}

// SignIn is the use case of signing in to the web pages with a name and a
// password. It bounds how many password checks run at once: each bcrypt
// comparison takes a core for about a quarter of a second, and a storm of
// sign-ins must not take the CPU that callouts need.
type SignIn struct {
	Store SignInStore
	Now   func() time.Time
	Log   *slog.Logger
	slots chan struct{}
}

// DefaultPasswordChecks is how many password checks run at once by
// default: half the CPUs this process may use, at least one, so that the
// other half stays free for everything else.
func DefaultPasswordChecks() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// NewSignIn returns the use case over st; checks bounds the concurrent
// password checks (0: DefaultPasswordChecks).
func NewSignIn(st SignInStore, now func() time.Time, log *slog.Logger, checks int) *SignIn {
	if checks <= 0 {
		checks = DefaultPasswordChecks()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SignIn{Store: st, Now: now, Log: log, slots: make(chan struct{}, checks)}
}

// Attempt is one try at signing in.
type Attempt struct {
	Name     string
	Password string
	// Address is the client's address (the zero Addr when unknown, which
	// then shares one counter with every other unknown address).
	Address netip.Addr
}

// ErrWrongCredentials is the one answer to a wrong name or password, so the
// answer does not tell which of them was wrong.
var ErrWrongCredentials = Errorf(KindUnauthorized, "the user name or password is wrong")

// Throttled is the cause of a refusal of kind throttled: how long
// to wait before trying again.
type Throttled struct{ Wait time.Duration }

func (t Throttled) Error() string { return "throttled for " + t.Wait.String() }

// RetryAfter returns how long err asks to wait, when it is a refusal for
// too many failed sign-ins.
func RetryAfter(err error) (time.Duration, bool) {
	var t Throttled
	if errors.As(err, &t) {
		return t.Wait, true
	}
	return 0, false
}

// Attempt signs a user in. It returns the user when name and password
// match; an error of kind throttled (see RetryAfter), without a password
// check, while the name or the address is throttled; ErrWrongCredentials
// otherwise — at once for a name no user can have, else after counting and
// auditing the failure. When ctx ends while waiting for a password check,
// it returns ctx's error and counts nothing.
func (s *SignIn) Attempt(ctx context.Context, a Attempt) (User, error) {
	name := strings.TrimSpace(a.Name)
	if CheckUserName(name) != nil {
		// No user can have this name (empty, too long, a control
		// character): bad input, refused at once, changing nothing. Being
		// quick tells nothing, since the rule is public.
		s.Log.Info("sign-in refused", "reason", "not a possible user name", "name", strconv.QuoteToASCII(name[:min(len(name), 100)]))
		return User{}, ErrWrongCredentials
	}
	keys := []ThrottleKey{{ThrottleUser, name}, {ThrottleAddress, addressKey(a.Address)}}
	if _, err := s.throttled(ctx, keys); err != nil {
		return User{}, err
	}
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return User{}, ctx.Err()
	}
	defer func() { <-s.slots }()
	// Failures may have been counted while this attempt waited.
	counts, err := s.throttled(ctx, keys)
	if err != nil {
		return User{}, err
	}

	u, known, err := s.user(ctx, name)
	if err != nil {
		return User{}, err
	}
	if !known {
		PasswordMatches("", a.Password) // as slow as a real check
		return User{}, s.fail(ctx, a, name, keys, nil, SignInUnknownUser)
	}
	// Always the full check, even for an empty password: a quicker answer
	// would tell that the name is a user's.
	if !PasswordMatches(u.PasswordHash, a.Password) {
		return User{}, s.fail(ctx, a, name, keys, &u, SignInWrongPassword)
	}
	if len(counts) > 0 {
		if err := s.Store.ClearThrottle(ctx, keys); err != nil {
			return User{}, err
		}
	}
	return u, nil
}

// throttled returns the keys' counters, or the refusal when one of them
// is still waiting.
func (s *SignIn) throttled(ctx context.Context, keys []ThrottleKey) ([]ThrottleCount, error) {
	counts, err := s.Store.ThrottleCounts(ctx, keys)
	if err != nil {
		return nil, err
	}
	if wait := throttleWait(counts, s.Now()); wait > 0 {
		s.Log.Info("sign-in throttled", "user", keys[0].Value, "address", keys[1].Value, "retry_after", wait.String())
		return nil, &Error{Kind: KindThrottled, Err: Throttled{wait},
			Message: fmt.Sprintf("too many failed sign-ins for this user name or from this address: try again in %s", waitText(wait))}
	}
	return counts, nil
}

// throttleWait returns how long from now the longest wait of counts lasts.
func throttleWait(counts []ThrottleCount, now time.Time) time.Duration {
	var wait time.Duration
	for _, c := range counts {
		if c.LastFailure.Before(now.Add(-SignInForgetAfter)) {
			continue
		}
		wait = max(wait, c.LastFailure.Add(SignInWait(c.Failures)).Sub(now))
	}
	return wait
}

// RetryAfterSeconds is a wait as the Retry-After header gives it: whole
// seconds, rounded up, at least one.
func RetryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

func waitText(wait time.Duration) string {
	n := RetryAfterSeconds(wait)
	switch {
	case n == 1:
		return "1 second"
	case n < 120:
		return strconv.Itoa(n) + " seconds"
	}
	return strconv.Itoa((n+59)/60) + " minutes"
}

// user looks the name up.
func (s *SignIn) user(ctx context.Context, name string) (User, bool, error) {
	u, err := s.Store.UserByName(ctx, name)
	switch {
	case ErrorKind(err) == KindNotFound:
		return User{}, false, nil
	case err != nil:
		return User{}, false, err
	}
	return u, true, nil
}

// fail counts and audits a refused sign-in of name (the user so named,
// when there is one) and returns ErrWrongCredentials.
func (s *SignIn) fail(ctx context.Context, a Attempt, name string, keys []ThrottleKey, u *User, reason string) error {
	now := s.Now()
	addr := "unknown"
	if a.Address.IsValid() {
		addr = a.Address.Unmap().String()
	}
	f := SignInFailure{At: now, UserName: name, Address: addr, Reason: reason, Keys: keys, ForgetBefore: now.Add(-SignInForgetAfter)}
	if u != nil {
		f.LabID = u.LabID
		data, _ := json.Marshal(map[string]string{"address": addr, "reason": reason}) // strings only
		f.Activity = &Activity{CategoryID: CategorySignIn, User: u.Name, CreatedAt: now, Data: data,
			Message: fmt.Sprintf("Sign-in of %s refused (wrong password) from %s", u.Name, addr)}
	}
	if err := s.Store.RecordSignInFailure(ctx, f); err != nil {
		return fmt.Errorf("record the failed sign-in of %q: %w", name, err)
	}
	s.Log.Info("sign-in refused", "user", name, "address", addr, "reason", reason)
	return ErrWrongCredentials
}

// addressKey is the client address failures are counted against: an IPv4
// address, or an IPv6 address's /64, which one host usually holds whole.
func addressKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
