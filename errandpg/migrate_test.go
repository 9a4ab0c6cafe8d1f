package errandpg

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is satisfied by a pool, a connection and a transaction.
var (
	_ DB = (*pgxpool.Pool)(nil)
	_ DB = (*pgx.Conn)(nil)
	_ DB = pgx.Tx(nil)
)

var errandTables = []string{"errand_tasks", "errand_schedules", "errand_schema_migrations"}

// latestMigration is the version of the newest embedded migration.
const latestMigration = 3

// errandFunctions are the trigger functions of migrations 2 and 3.
var errandFunctions = []string{"errand_notify_work", "errand_notify_done_rows"}

// errandTriggers are the triggers on errand_tasks, by name.
var errandTriggers = []string{"errand_tasks_done_rows", "errand_tasks_work_insert", "errand_tasks_work_update"}

func functionExists(t *testing.T, db DB, name string) bool {
	t.Helper()
	var exists bool
	if err := db.QueryRow(testCtx(t), `SELECT to_regproc($1) IS NOT NULL`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

// taskTriggers returns the names of the triggers on errand_tasks, sorted.
func taskTriggers(t *testing.T, db DB) []string {
	t.Helper()
	rows, err := db.Query(testCtx(t), `SELECT tgname::text FROM pg_trigger
		WHERE tgrelid = 'errand_tasks'::regclass AND NOT tgisinternal ORDER BY tgname`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func appliedVersions(t *testing.T, db DB) []int {
	t.Helper()
	rows, err := db.Query(testCtx(t), `SELECT version FROM errand_schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantVersions() []int {
	var vs []int
	for i := range migrations {
		vs = append(vs, i+1)
	}
	return vs
}

func tableExists(t *testing.T, db DB, name string) bool {
	t.Helper()
	var exists bool
	if err := db.QueryRow(testCtx(t), `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func checkVersion(t *testing.T, db DB, wantCurrent int) {
	t.Helper()
	cur, latest, err := Version(testCtx(t), db)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if cur != wantCurrent || latest != len(migrations) {
		t.Fatalf("Version = %d, %d; want %d, %d", cur, latest, wantCurrent, len(migrations))
	}
}

func TestMigrateFreshSchemaIsIdempotent(t *testing.T) {
	pool := newSchemaPool(t)
	ctx := testCtx(t)
	checkVersion(t, pool, 0)
	for _, tbl := range errandTables {
		if tableExists(t, pool, tbl) {
			t.Fatalf("%s exists before Migrate", tbl)
		}
	}

	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	checkVersion(t, pool, len(migrations))
	for _, tbl := range errandTables {
		if !tableExists(t, pool, tbl) {
			t.Fatalf("%s missing after Migrate", tbl)
		}
	}
	var firstApplied string
	if err := pool.QueryRow(ctx, `SELECT applied_at::text FROM errand_schema_migrations WHERE version = 1`).Scan(&firstApplied); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if err := Migrate(ctx, pool); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	checkVersion(t, pool, len(migrations))
	checkVersionPair(t, pool, latestMigration, latestMigration)
	if got := appliedVersions(t, pool); !slices.Equal(got, wantVersions()) {
		t.Fatalf("recorded versions %v, want %v", got, wantVersions())
	}
	if got := taskTriggers(t, pool); !slices.Equal(got, errandTriggers) {
		t.Fatalf("triggers on errand_tasks %v, want %v", got, errandTriggers)
	}
	for _, f := range errandFunctions {
		if !functionExists(t, pool, f) {
			t.Fatalf("function %s missing after Migrate", f)
		}
	}
	var applied string
	if err := pool.QueryRow(ctx, `SELECT applied_at::text FROM errand_schema_migrations WHERE version = 1`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != firstApplied {
		t.Fatalf("version 1 re-applied: applied_at %s, then %s", firstApplied, applied)
	}
}

func TestMigrateConcurrentCallers(t *testing.T) {
	pool := newSchemaPool(t)
	ctx := testCtx(t)
	const callers = 8
	start := make(chan struct{})
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			errs[i] = Migrate(ctx, pool)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: Migrate: %v", i, err)
		}
	}
	checkVersion(t, pool, len(migrations))
	if got := appliedVersions(t, pool); !slices.Equal(got, wantVersions()) {
		t.Fatalf("recorded versions %v, want %v", got, wantVersions())
	}
}

func TestMigrateInsideRolledBackTx(t *testing.T) {
	pool := newSchemaPool(t)
	ctx := testCtx(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := Migrate(ctx, tx); err != nil {
		t.Fatalf("Migrate in tx: %v", err)
	}
	checkVersion(t, tx, len(migrations))
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	checkVersion(t, pool, 0)
	for _, tbl := range errandTables {
		if tableExists(t, pool, tbl) {
			t.Fatalf("%s exists after the transaction rolled back", tbl)
		}
	}
	for _, f := range errandFunctions {
		if functionExists(t, pool, f) {
			t.Fatalf("function %s exists after the transaction rolled back", f)
		}
	}
}

// TestMigrateUpgradesFromVersion1 applies migration 2 to a schema at version
// 1 holding tasks: they are kept, and from then on announced.
func TestMigrateUpgradesFromVersion1(t *testing.T) {
	pool := newSchemaPool(t)
	ctx := testCtx(t)
	if err := applyMigration(ctx, pool, migrations[0]); err != nil {
		t.Fatal(err)
	}
	checkVersionPair(t, pool, 1, latestMigration)
	if got := taskTriggers(t, pool); len(got) != 0 {
		t.Fatalf("triggers at version 1: %v", got)
	}
	old := mustInsert(t, pool, newTask{})
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate from version 1: %v", err)
	}
	checkVersionPair(t, pool, latestMigration, latestMigration)
	if got := appliedVersions(t, pool); !slices.Equal(got, wantVersions()) {
		t.Fatalf("recorded versions %v, want %v", got, wantVersions())
	}
	if r := mustGet(t, pool, old); r.state != stateQueued {
		t.Fatalf("task from version 1: %+v", r)
	}
	tl := listeningListener(t, pool)
	if ok, err := cancelWaiting(ctx, pool, old); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := tl.sync(t); !slices.Equal(got, []string{uuidText(old)}) {
		t.Fatalf("done ids %q after the upgrade", got)
	}
}

// TestMigrateUpgradesFromVersion2 applies migration 3 to a schema at
// version 2 with a task running: the per-row done trigger is replaced by the
// per-statement one, and the running task, finished after the upgrade, is
// announced once.
func TestMigrateUpgradesFromVersion2(t *testing.T) {
	pool := newSchemaPool(t)
	ctx := testCtx(t)
	for _, m := range migrations[:2] {
		if err := applyMigration(ctx, pool, m); err != nil {
			t.Fatal(err)
		}
	}
	checkVersionPair(t, pool, 2, latestMigration)
	if got, want := taskTriggers(t, pool), []string{"errand_tasks_done", "errand_tasks_work_insert", "errand_tasks_work_update"}; !slices.Equal(got, want) {
		t.Fatalf("triggers at version 2: %v, want %v", got, want)
	}
	running := mustInsert(t, pool, newTask{})
	c := fetchOne(t, pool)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate from version 2: %v", err)
	}
	checkVersionPair(t, pool, latestMigration, latestMigration)
	if got := taskTriggers(t, pool); !slices.Equal(got, errandTriggers) {
		t.Fatalf("triggers after the upgrade %v, want %v", got, errandTriggers)
	}
	if functionExists(t, pool, "errand_notify_done") {
		t.Fatal("errand_notify_done kept after the upgrade")
	}
	tl := listeningListener(t, pool)
	if ok, err := finish(ctx, pool, leaseOf(c), stateSucceeded, nil, ""); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := tl.sync(t); !slices.Equal(got, []string{uuidText(running)}) {
		t.Fatalf("done ids %q after the upgrade, want %s once", got, uuidText(running))
	}
}

func TestMigrateOnConn(t *testing.T) {
	pool := newSchemaPool(t) // creates the schema and drops it at cleanup
	ctx := testCtx(t)
	cfg, err := pgx.ParseConfig(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_setting('search_path')`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := Migrate(ctx, conn); err != nil {
		t.Fatalf("Migrate on conn: %v", err)
	}
	checkVersion(t, conn, len(migrations))
	checkVersion(t, pool, len(migrations))
}

func TestMigrateLeavesNewerSchemaAlone(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	newer := len(migrations) + 5
	if _, err := pool.Exec(ctx, `INSERT INTO errand_schema_migrations (version) VALUES ($1)`, newer); err != nil {
		t.Fatal(err)
	}
	checkVersionPair(t, pool, newer, len(migrations))
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate on a newer schema: %v", err)
	}
	checkVersionPair(t, pool, newer, len(migrations))
}

func checkVersionPair(t *testing.T, db DB, wantCur, wantLatest int) {
	t.Helper()
	cur, latest, err := Version(testCtx(t), db)
	if err != nil || cur != wantCur || latest != wantLatest {
		t.Fatalf("Version = %d, %d, %v; want %d, %d, nil", cur, latest, err, wantCur, wantLatest)
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int
		wantErr string
	}{
		{"ordered", fstest.MapFS{
			"migrations/0002_more.up.sql": file("B"),
			"migrations/0001_init.up.sql": file("A"),
		}, []int{1, 2}, ""},
		{"gap", fstest.MapFS{
			"migrations/0001_init.up.sql": file("A"),
			"migrations/0003_more.up.sql": file("C"),
		}, nil, "version 3, want 2"},
		{"duplicate", fstest.MapFS{
			"migrations/0001_init.up.sql":  file("A"),
			"migrations/0001_again.up.sql": file("A2"),
		}, nil, "want 2"},
		{"not from 1", fstest.MapFS{
			"migrations/0002_init.up.sql": file("A"),
		}, nil, "version 2, want 1"},
		{"bad name", fstest.MapFS{
			"migrations/0001_init.sql": file("A"),
		}, nil, "name must be NNNN_name.up.sql"},
		{"empty", fstest.MapFS{"migrations": &fstest.MapFile{Mode: 0o755 | 1<<31}}, nil, "no migrations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadMigrations: err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("versions %v, want %v", got, tt.want)
			}
		})
	}

	// The embedded migrations load, from 1 without gaps.
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != latestMigration || ms[0].version != 1 || ms[len(ms)-1].version != len(ms) {
		t.Fatalf("embedded migrations: %d, first %d; want %d from 1", len(ms), ms[0].version, latestMigration)
	}
}
