package sqlstore

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// MigrateTo applies the engine's migrations up to and including version,
// so that a test can put rows in an older schema and then migrate on.
func (s *Store) MigrateTo(ctx context.Context, version int64) error {
	dialect := goose.DialectSQLite3
	if s.Engine == Postgres {
		dialect = goose.DialectPostgres
	}
	sub, err := fs.Sub(migrations, "migrations/"+string(s.Engine))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, s.DB, sub)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	_, err = p.UpTo(ctx, version)
	return err
}
