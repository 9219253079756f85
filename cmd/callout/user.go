package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"

	"callout/internal/callout"
	"callout/internal/sqlstore"
)

// userCreateCmd creates a user of the web pages. The password is read from
// standard input, never from the command line, where other users of the
// machine could see it in the process list.
func userCreateCmd(ctx context.Context, e *env, args []string) error {
	return createUser(ctx, e, args, os.Stdin)
}

func createUser(ctx context.Context, e *env, args []string, stdin io.Reader) error {
	fs, db := flags(e, "user create", "user create --lab ID --name NAME --password-stdin [--role staff|admin] [--departments A,B] [--db URL]")
	lab := fs.Int64("lab", 0, "the lab's id (required)")
	name := fs.String("name", "", "the user name people sign in with (required; unique across labs)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input (required)")
	role := fs.String("role", "staff", "staff or admin (admins may change the lab's settings)")
	depts := fs.String("departments", "", "limit the user to these departments, comma-separated (default: all)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *lab <= 0 || strings.TrimSpace(*name) == "" || !*fromStdin {
		return fmt.Errorf("--lab, --name and --password-stdin are required: %w", errUsage)
	}
	r, err := callout.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("%v: %w", callout.ErrorMessage(err), errUsage)
	}
	pw, err := readPassword(stdin)
	if err != nil {
		return err
	}
	u, err := callout.NewUser(*lab, *name, pw, r, callout.ParseDepartments(*depts), callout.Now())
	if err != nil {
		return err
	}
	st, err := openStore(ctx, e, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	id, err := st.CreateUser(ctx, u)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}

// readPassword reads one password: the first line of r, without its line
// ending (printf 'secret\n' | callout user create … works as expected).
func readPassword(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", callout.Errorf(callout.KindInvalid, "no password on standard input")
	}
	return pw, nil
}

// demoUser gives the demo lab's admin user "demo" a new random password and
// returns it: like the demo token, it is stored hashed and shown once.
func demoUser(ctx context.Context, st *sqlstore.Store) (string, error) {
	lab, err := st.FindLab(ctx, DemoLabName)
	if err != nil {
		return "", err
	}
	// 96 random bits pass the password rules all but always; drawing again
	// makes "all but" certain.
	var pw string
	for pw == "" || callout.CheckPassword(pw, "demo") != nil {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		pw = base64.RawURLEncoding.EncodeToString(b[:])
	}
	u, err := callout.NewUser(lab, "demo", pw, callout.RoleAdmin, nil, callout.Now())
	if err != nil {
		return "", err
	}
	err = st.SetUserPassword(ctx, lab, u.Name, u.PasswordHash)
	if callout.ErrorKind(err) == callout.KindNotFound {
		_, err = st.CreateUser(ctx, u)
	}
	return pw, err
}
