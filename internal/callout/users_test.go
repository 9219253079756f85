package callout

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	// 72 bytes no guesser would try early: the longest password bcrypt uses.
	const long72 = "Wq3-vortex-Kelp9-anvil-Tundra4-mosaic-Quill7-ember-Hazel2-orbit-Fjord8-x"
	require.Len(t, long72, 72)
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"correct horse", true},
		{"correct horse battery", true},
		{"twelve chars", true},
		{"ääääääääääää", true}, // twelve characters, 24 bytes; not a pattern zxcvbn knows
		{"Müller-Lüdenscheid", true},
		{"mkj8Fh3kPq9z", true},
		{long72, true},
		{long72 + "x", false},
		{"short", false},
		{"elevenchars", false},
		{strings.Repeat(" ", 20), false},
		{"\xff\xfe invalid utf8", false},

		// Long enough, but on the list of common passwords or built from
		// it, a word, a repeat, a sequence or a keyboard pattern.
		{"password1234", false},
		{"Password123!", false},
		{"p@ssw0rd1234", false},
		{"123456789012", false},
		{"qwertyuiop12", false},
		{"1q2w3e4r5t6y", false},
		{"iloveyou2024", false},
		{"letmeinplease", false},
		{"Welcome12345", false},
		{"hunter2hunter2", false},
		{"abcdefghijkl", false},
		{"aaaaaaaaaaaa", false},
		{strings.Repeat("x", 72), false},
		{"zxcvbnm,./12", false},
		{"callout12345", false}, // the product's name
	} {
		err := CheckPassword(tc.pw)
		require.Equal(t, tc.ok, err == nil, "%q: %v", tc.pw, err)
		if err != nil {
			require.Equal(t, KindInvalid, ErrorKind(err))
		}
	}
	// The user's own name is a word an attacker knows.
	require.NoError(t, CheckPassword("ashakumari99"))
	require.Error(t, CheckPassword("ashakumari99", "ashakumari"))
	require.ErrorContains(t, CheckPassword("password1234"), "too easy to guess")
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	u, err := NewUser(7, "  asha ", "a long enough password", RoleStaff, []string{"Biochemistry"}, time.Now())
	require.NoError(t, err)
	require.Equal(t, "asha", u.Name)
	require.NotContains(t, u.PasswordHash, "password")
	require.True(t, strings.HasPrefix(u.PasswordHash, "$2a$"), "bcrypt")
	require.True(t, PasswordMatches(u.PasswordHash, "a long enough password"))
	require.False(t, PasswordMatches(u.PasswordHash, "a long enough passworD"))
	require.False(t, PasswordMatches("", "anything at all"), "no user never matches")
	require.Equal(t, Principal{LabID: 7, User: "asha", Role: RoleStaff, Departments: []string{"Biochemistry"}}, u.Principal())
}

func TestNewUserRefuses(t *testing.T) {
	t.Parallel()
	for name, args := range map[string]struct {
		name, pw string
		role     Role
	}{
		"empty name":       {"", "a long enough password", RoleStaff},
		"space in name":    {"asha rao", "a long enough password", RoleStaff},
		"bad role":         {"asha", "a long enough password", "root"},
		"short password":   {"asha", "secret", RoleStaff},
		"common password":  {"asha", "password1234", RoleStaff},
		"name as password": {"ashakumari", "ashakumari99", RoleStaff},
	} {
		_, err := NewUser(1, args.name, args.pw, args.role, nil, time.Now())
		require.Error(t, err, name)
		require.Equal(t, KindInvalid, ErrorKind(err), name)
	}
}
