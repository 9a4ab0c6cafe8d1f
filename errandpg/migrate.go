package errandpg

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what Migrate, Version and the store need from a connection: it is
// satisfied by *pgxpool.Pool, *pgx.Conn and pgx.Tx.
//
// The tables live in the connection's search_path (the first schema in it
// that exists, where CREATE TABLE puts them). To keep errand's tables in
// their own schema, set it on every connection of the pool, e.g.
//
//	cfg, _ := pgxpool.ParseConfig(url)
//	cfg.ConnConfig.RuntimeParams["search_path"] = "errand"
//	pool, _ := pgxpool.NewWithConfig(ctx, cfg)
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string // file name, for errors
	sql     string
}

// migrations holds the embedded migrations, in version order.
var migrations = mustLoadMigrations(migrationFiles)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.up\.sql$`)

// loadMigrations reads migrations/NNNN_name.up.sql from fsys and checks that
// the versions run 1, 2, 3... without gaps or duplicates.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("errandpg: reading migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("errandpg: migration file %q: name must be NNNN_name.up.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("errandpg: reading migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("errandpg: migration %s: version %d, want %d (versions must run 1, 2, 3... without gaps or duplicates)", m.name, m.version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("errandpg: no migrations")
	}
	return ms, nil
}

// migrationLockClass is the first key of the advisory lock that serializes
// Migrate calls on one schema ('errn'); the second is the schema's hash.
const migrationLockClass = 0x6572726e

const (
	sqlMigrationLock = `SELECT pg_advisory_xact_lock($1::int4, hashtext(coalesce(current_schema(), '')))`

	sqlCreateMigrationsTable = `CREATE TABLE IF NOT EXISTS errand_schema_migrations (
	version    integer     PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

	sqlMigrationApplied = `SELECT EXISTS (SELECT 1 FROM errand_schema_migrations WHERE version = $1)`

	sqlRecordMigration = `INSERT INTO errand_schema_migrations (version) VALUES ($1)`

	sqlMigrationsTableExists = `SELECT to_regclass('errand_schema_migrations') IS NOT NULL`

	sqlCurrentVersion = `SELECT coalesce(max(version), 0) FROM errand_schema_migrations`
)

// Migrate brings the errand schema in db up to date: it applies, in order,
// each embedded migration the database has not recorded yet in its table
// errand_schema_migrations. errandpg never migrates on its own; call Migrate
// at start-up or from a deployment step.
//
// Each migration runs in its own transaction holding a transaction-level
// advisory lock, so Migrate can be called by several processes at once: one
// applies a migration, the others wait and then find it recorded. Migrate is
// idempotent. A database whose schema is newer than this package is left
// untouched (see Version).
//
// Given a pgx.Tx, Migrate runs inside it (each migration in a savepoint) and
// nothing is kept unless the caller commits.
func Migrate(ctx context.Context, db DB) error {
	for _, m := range migrations {
		if err := applyMigration(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db DB, m migration) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlMigrationLock, int32(migrationLockClass)); err != nil {
			return fmt.Errorf("errandpg: migrate: taking the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlCreateMigrationsTable); err != nil {
			return fmt.Errorf("errandpg: migrate: creating errand_schema_migrations: %w", err)
		}
		var applied bool
		if err := tx.QueryRow(ctx, sqlMigrationApplied, m.version).Scan(&applied); err != nil {
			return fmt.Errorf("errandpg: migrate: reading errand_schema_migrations: %w", err)
		}
		if applied {
			return nil
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("errandpg: migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, sqlRecordMigration, m.version); err != nil {
			return fmt.Errorf("errandpg: migration %s: recording it: %w", m.name, err)
		}
		return nil
	})
}

// Version reports the schema version of db (0 if Migrate never ran there)
// and the latest version this package knows. current < latest means Migrate
// has work to do; current > latest means a newer errandpg migrated the
// database.
func Version(ctx context.Context, db DB) (current, latest int, err error) {
	latest = migrations[len(migrations)-1].version
	var exists bool
	if err := db.QueryRow(ctx, sqlMigrationsTableExists).Scan(&exists); err != nil {
		return 0, latest, fmt.Errorf("errandpg: reading the schema version: %w", err)
	}
	if !exists {
		return 0, latest, nil
	}
	if err := db.QueryRow(ctx, sqlCurrentVersion).Scan(&current); err != nil {
		return 0, latest, fmt.Errorf("errandpg: reading the schema version: %w", err)
	}
	return current, latest, nil
}
