package callout

import (
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/crypto/bcrypt"
)

// User is a person who signs in to the web pages. Like an API token, a user
// belongs to one lab, has a role and may be limited to departments.
type User struct {
	ID           int64
	LabID        int64
	Name         string
	Role         Role
	Departments  []string
	PasswordHash string // bcrypt; the password itself is never kept
	CreatedAt    time.Time
}

// Principal is who the user acts as in the use cases.
func (u User) Principal() Principal {
	return Principal{LabID: u.LabID, User: u.Name, Role: u.Role, Departments: u.Departments}
}

// Session is a signed-in browser. Only the SHA-256 of its cookie is stored
// (as for API tokens); CSRF is the token every form of the session carries.
type Session struct {
	TokenHash string
	CSRF      string
	User      User
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Password rules. The minimum follows NIST SP 800-63B for a password that is
// the only factor (length matters, composition rules do not); the maximum is
// bcrypt's, which ignores anything after 72 bytes. As 800-63B also asks, a
// password must not be easy to guess: zxcvbn (shipped in the binary with
// its lists: 30,000 common passwords, English words, names and surnames)
// must estimate at least 10^8 guesses for it — its score 3, "safely
// unguessable" against an offline attack on a bcrypt hash — counting the
// user's own name and "callout" as known words.
const (
	MinPasswordLength = 12
	MaxPasswordBytes  = 72
	MinPasswordScore  = 3
)

// PasswordCost is the bcrypt work factor: about a quarter of a second per
// sign-in on a server, slow enough to make guessing a stolen hash expensive.
var PasswordCost = 12

// CheckPassword enforces the password rules with a message a user can act
// on. known are words an attacker knows about the account (its user name).
func CheckPassword(pw string, known ...string) error {
	switch {
	case !utf8.ValidString(pw):
		return Errorf(KindInvalid, "the password is not valid UTF-8")
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return Errorf(KindInvalid, "the password must have at least %d characters", MinPasswordLength)
	case len(pw) > MaxPasswordBytes:
		return Errorf(KindInvalid, "the password may have at most %d bytes", MaxPasswordBytes)
	case strings.TrimSpace(pw) == "":
		return Errorf(KindInvalid, "the password must not be blank")
	}
	if zxcvbn.PasswordStrength(pw, append(known, "callout")).Score < MinPasswordScore {
		return Errorf(KindInvalid, "the password is too easy to guess: it is, or is built from, a common password, "+
			"a word or name, the user name, a date, a repeat or a keyboard pattern; "+
			"several unrelated words, or random characters from a password manager, will do")
	}
	return nil
}

// HashPassword checks pw against the rules and returns its bcrypt hash;
// known are as for CheckPassword.
func HashPassword(pw string, known ...string) (string, error) {
	if err := CheckPassword(pw, known...); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), PasswordCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// dummyHash is compared against when a user name is unknown, so a sign-in
// takes as long whether or not the user exists. It is made on first use,
// at the cost in force then.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), PasswordCost)
	return h
})

// PasswordMatches reports whether pw is the password of hash. An empty hash
// (no such user) still costs one comparison and never matches.
func PasswordMatches(hash, pw string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw))
		return false
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
	return err == nil
}

// NewUser validates a user before it is stored and hashes its password.
func NewUser(labID int64, name, password string, role Role, departments []string, now time.Time) (User, error) {
	name = strings.TrimSpace(name)
	if err := CheckUserName(name); err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, err
	}
	for _, d := range departments {
		if err := checkText("department", d); err != nil {
			return User{}, err
		}
	}
	h, err := HashPassword(password, name)
	if err != nil {
		return User{}, err
	}
	return User{LabID: labID, Name: name, Role: role, Departments: departments, PasswordHash: h, CreatedAt: now}, nil
}

// CheckUserName accepts names people can type at a sign-in page: 1 to 100
// characters without spaces or control characters.
func CheckUserName(name string) error {
	if name == "" || len(name) > 100 || !utf8.ValidString(name) {
		return Errorf(KindInvalid, "a user name has 1 to 100 characters")
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || isBidiControl(r) {
			return Errorf(KindInvalid, "a user name may not contain spaces, control or bidirectional control characters")
		}
	}
	return nil
}
