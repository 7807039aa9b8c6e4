package catalog_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/catalog/catalogtest"
)

func TestSQLiteStore(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		return open(t, filepath.Join(t.TempDir(), "catalog.db"))
	})
}

// storeOnly hides every method but the Store's: catalog.Summaries falls
// back to Summarize of all runs and drills.
type storeOnly struct{ catalog.Store }

func TestStoreOnly(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store {
		return storeOnly{open(t, filepath.Join(t.TempDir(), "catalog.db"))}
	})
}

// TestSummariesUseIndexes checks that the queries of Summaries (and
// TypedRuns) only seek in indexes: no step scans a whole table or index,
// so their cost grows with the number of targets (and failures), not of
// runs; the typed runs are seeks in runs_backup_type, whose expression
// they must repeat exactly, and no other query takes that index.
func TestSummariesUseIndexes(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	if _, err := catalogtest.Fill(t.Context(), s, 3, 20, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, q := range catalog.SummaryQueries {
		var args []any
		if strings.Contains(q, "?") {
			args = append(args, "t00")
		}
		rows, err := catalog.DB(s).Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN runs") || strings.HasPrefix(step, "SCAN drills") {
				t.Errorf("%s scans: %q\nplan:\n%s", name, step, strings.Join(plan, "\n"))
			}
		}
		const typed = "SEARCH runs USING INDEX runs_backup_type (<expr>=? AND target=? AND result=?)"
		if strings.HasPrefix(name, "typed") && !slices.ContainsFunc(plan, func(step string) bool { return strings.HasSuffix(step, typed) }) {
			t.Errorf("%s does not seek in runs_backup_type:\n%s", name, strings.Join(plan, "\n"))
		}
		// For a newest run by target, runs_backup_type would sort the
		// target's runs.
		if !strings.HasPrefix(name, "typed") && slices.ContainsFunc(plan, func(step string) bool { return strings.Contains(step, "runs_backup_type") }) {
			t.Errorf("%s uses runs_backup_type:\n%s", name, strings.Join(plan, "\n"))
		}
	}
}

// open opens the catalog at path; the caller closes it.
func open(t *testing.T, path string) *catalog.SQLite {
	t.Helper()
	s, err := catalog.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "sub")
	s := open(t, filepath.Join(dir, "catalog.db"))
	defer s.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	db := catalog.DB(s)
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "10000",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
	} {
		var got string
		if err := db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "my lab?#%", "catalog.db")
	s := open(t, path)
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("catalog not at %s: %v", path, err)
	}
}

func TestNanosecondsRoundTrip(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "catalog.db"))
	defer s.Close()
	start := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.FixedZone("EST", -5*3600))
	r, err := s.StartRun(t.Context(), catalog.Run{Target: "db", Kind: catalog.KindBackup, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(t.Context(), catalog.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("Runs = %v, %v", runs, err)
	}
	if got := runs[0].Start; got != start.UTC() || got != r.Start {
		t.Errorf("Start = %v, want %v", got, start.UTC())
	}
}

// versions returns the schema versions recorded as applied in the catalog
// at path (goose's table, without its version 0), in the order applied.
func versions(t *testing.T, path string) []int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT version_id FROM goose_db_version WHERE version_id > 0 AND is_applied ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func checkVersions(t *testing.T, path string) {
	t.Helper()
	got, want := versions(t, path), catalog.MigrationVersions()
	if fmt.Sprint(got) != fmt.Sprint(want) || want[len(want)-1] != catalog.SchemaVersion {
		t.Fatalf("schema versions %v, want the migrations' %v up to %d", got, want, catalog.SchemaVersion)
	}
}

func TestMigrationsApplyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	for range 3 {
		s := open(t, path)
		if _, err := s.StartRun(t.Context(), catalog.Run{Target: "db", Kind: catalog.KindBackup, Start: time.Now()}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		checkVersions(t, path)
	}
	s := open(t, path)
	defer s.Close()
	if runs, err := s.Runs(t.Context(), catalog.RunFilter{}); err != nil || len(runs) != 3 {
		t.Errorf("after reopening: %d runs, %v; want 3", len(runs), err)
	}
}

func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := catalog.Open(t.Context(), path)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	checkVersions(t, path)
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	s := open(t, path)
	newer := catalog.SchemaVersion + 1
	if _, err := catalog.DB(s).Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)", newer); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := catalog.Open(t.Context(), path)
	if !errors.Is(err, catalog.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer catalog: %v; want ErrSchemaTooNew", err)
	}
	t.Log(err)
}

// checkLoaded asserts that the catalog at path holds n finished runs (and
// n events) of each target and passes an integrity check.
func checkLoaded(t *testing.T, path string, n int, targets ...string) {
	t.Helper()
	s := open(t, path)
	defer s.Close()
	for _, target := range targets {
		runs, err := s.Runs(t.Context(), catalog.RunFilter{Target: target, Result: catalog.ResultOK})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != n {
			t.Errorf("target %s: %d finished runs, want %d", target, len(runs), n)
		}
	}
	events, err := s.Events(t.Context(), 0)
	if err != nil || len(events) != n*len(targets) {
		t.Errorf("%d events (%v), want %d", len(events), err, n*len(targets))
	}
	var ok string
	if err := catalog.DB(s).QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check = %q, %v", ok, err)
	}
}

func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	const n = 100
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, target := range []string{"a", "b"} {
		s := open(t, path)
		defer s.Close()
		wg.Go(func() { errs[i] = catalogtest.WriteRuns(t.Context(), s, target, target, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	checkLoaded(t, path, n, "a", "b")
}

const helperEnv = "HOMELAB_CATALOG_HELPER_DB"

// TestHelperProcess is not a test: TestTwoProcesses runs the test binary
// again with helperEnv set, and then this writes runs as a second process.
// It opens the catalog, prints "ready", waits for a line on stdin, writes
// helperRuns runs of target "child" and exits.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		return // only a helper when re-executed by the test that needs it
	}
	if err := helper(path); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

const helperRuns = 200

func helper(path string) error {
	s, err := catalog.Open(context.Background(), path)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	return catalogtest.WriteRuns(context.Background(), s, "child", "child", helperRuns)
}

func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	parent := open(t, path)
	defer parent.Close()

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v; want ready", line, err)
	}
	// Both processes start writing now.
	if _, err := fmt.Fprintln(stdin, "go"); err != nil {
		t.Fatal(err)
	}
	werr := catalogtest.WriteRuns(t.Context(), parent, "parent", "parent", helperRuns)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
	if werr != nil {
		t.Fatal(werr)
	}
	checkLoaded(t, path, helperRuns, "parent", "child")
	t.Logf("writers alternated %d times", alternations(t, parent))
}

// alternations counts how often the target changes between runs in ID
// (insertion) order: a measure of how much two writers overlapped.
func alternations(t *testing.T, s *catalog.SQLite) int {
	rows, err := catalog.DB(s).Query("SELECT target FROM runs ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n, prev := 0, ""
	for rows.Next() {
		var target string
		if err := rows.Scan(&target); err != nil {
			t.Fatal(err)
		}
		if prev != "" && target != prev {
			n++
		}
		prev = target
	}
	return n
}
