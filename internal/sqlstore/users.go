package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"callout/internal/callout"
)

// CreateUser stores a user and returns its id. A name already taken, in any
// lab, is a conflict.
func (s *Store) CreateUser(ctx context.Context, u callout.User) (int64, error) {
	if _, err := s.Settings(ctx, u.LabID); err != nil {
		return 0, err
	}
	var id int64
	err := s.DB.QueryRowContext(ctx, `
		INSERT INTO users (lab_id, name, password_hash, role, departments, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING id`,
		u.LabID, u.Name, u.PasswordHash, string(u.Role), strings.Join(u.Departments, ","), u.CreatedAt,
	).Scan(&id)
	if isUnique(err) {
		return 0, callout.Errorf(callout.KindConflict, "the user name %q is taken", u.Name)
	}
	if err != nil {
		return 0, fmt.Errorf("create user %q: %w", u.Name, err)
	}
	return id, nil
}

// SetUserPassword replaces the password hash of the lab's user with the given
// name and signs out every session of that user.
func (s *Store) SetUserPassword(ctx context.Context, labID int64, name, hash string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `UPDATE users SET password_hash = $3 WHERE lab_id = $1 AND name = $2 RETURNING id`,
			labID, name, hash).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return callout.Errorf(callout.KindNotFound, "lab %d has no user %q", labID, name)
		}
		if err != nil {
			return fmt.Errorf("set password of user %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE user_id = $1`, id); err != nil {
			return fmt.Errorf("end sessions of user %q: %w", name, err)
		}
		return nil
	})
}

const userColumns = `u.id, u.lab_id, u.name, u.password_hash, u.role, u.departments, u.created_at`

func scanUser(sc interface{ Scan(...any) error }, extra ...any) (callout.User, error) {
	var u callout.User
	var role, departments string
	err := sc.Scan(append([]any{&u.ID, &u.LabID, &u.Name, &u.PasswordHash, &role, &departments, &u.CreatedAt}, extra...)...)
	u.Role = callout.Role(role)
	u.Departments = callout.ParseDepartments(departments)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

// UserByName returns the user with the given name, or an error of kind not found.
func (s *Store) UserByName(ctx context.Context, name string) (callout.User, error) {
	u, err := scanUser(s.DB.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, callout.Errorf(callout.KindNotFound, "no user is named %q", name)
	}
	if err != nil {
		return u, fmt.Errorf("load user %q: %w", name, err)
	}
	return u, nil
}

// CreateSession stores a new session and, in the same transaction, removes
// every expired one, so that sessions never pile up.
func (s *Store) CreateSession(ctx context.Context, sess callout.Session) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < $1`, sess.CreatedAt); err != nil {
			return fmt.Errorf("remove expired sessions: %w", err)
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO web_sessions (user_id, token_hash, csrf_token, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`,
			sess.User.ID, sess.TokenHash, sess.CSRF, sess.CreatedAt, sess.ExpiresAt)
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
}

// Session returns the session whose cookie hashes to tokenHash, with its
// user, or an error of kind unauthorized when there is none or it expired
// before now.
func (s *Store) Session(ctx context.Context, tokenHash string, now time.Time) (callout.Session, error) {
	var sess callout.Session
	u, err := scanUser(s.DB.QueryRowContext(ctx, `
		SELECT `+userColumns+`, ws.token_hash, ws.csrf_token, ws.created_at, ws.expires_at
		FROM web_sessions ws JOIN users u ON u.id = ws.user_id
		WHERE ws.token_hash = $1 AND ws.expires_at > $2`, tokenHash, now),
		&sess.TokenHash, &sess.CSRF, &sess.CreatedAt, &sess.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, callout.Errorf(callout.KindUnauthorized, "the session has ended; sign in again")
	}
	if err != nil {
		return sess, fmt.Errorf("load session: %w", err)
	}
	sess.User = u
	sess.CreatedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()
	return sess, nil
}

// DeleteSession ends a session; ending one that does not exist is no error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM web_sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
