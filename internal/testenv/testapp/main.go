// Command testapp is the service that runtime, backup and upgrade tests
// run for real: as a process (the exec runtime) or in a container built
// FROM scratch (the compose runtime; no registry is needed).
//
//	testapp serve -addr 127.0.0.1:8080 [-data DIR] [-pidfile FILE] [-check-table T]
//	testapp check -addr 127.0.0.1:8080    # exit 0 when /healthz answers 200
//	testapp version
//
// Its version is set at build time (-ldflags "-X main.version=1.1.0") or
// with -version. On start it migrates DIR forward to its version's data
// schema (1.0.0: 1, 1.0.5: 2, 1.1.0: 3, 2.0.0: 4), appending
// "migrated to schema N by VERSION" to DIR/data.txt for each step, and
// refuses to start on data newer than it knows. Versions 2.x never become
// healthy (/healthz answers 503). Every start and clean stop (SIGTERM or
// SIGINT) is appended to DIR/events.log, so a test can tell that a copy
// of DIR was taken while the service was stopped.
//
// With -check-table it is the application of a drill (drill.app): it
// connects to the database that HOMELAB_DRILL_PGHOST, _PGPORT,
// _PGDATABASE, _PGUSER and _PGPASSWORD name (pgx, at each request) and
// /healthz answers 200 only when table T has rows; otherwise 503, and a
// line on stderr saying why.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

var version = "1.0.0"

// schemas maps a version to the data schema it writes.
var schemas = map[string]int{"1.0.0": 1, "1.0.5": 2, "1.1.0": 3, "2.0.0": 4}

func main() {
	if len(os.Args) < 2 {
		fail("usage: testapp serve|check|version [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen (serve) or probe (check) address")
	data := fs.String("data", "", "data directory (serve)")
	pidfile := fs.String("pidfile", "", "write the process id here while serving")
	checkTable := fs.String("check-table", "", "healthy only when this table of the drill's database has rows (serve)")
	fs.StringVar(&version, "version", version, "the version to act as")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "version":
		fmt.Println(version)
	case "check":
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + *addr + "/healthz")
		if err != nil {
			fail("check: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fail("check: HTTP %d", resp.StatusCode)
		}
	case "serve":
		serve(*addr, *data, *pidfile, *checkTable)
	default:
		fail("unknown command %q", os.Args[1])
	}
}

func serve(addr, data, pidfile, checkTable string) {
	if data != "" {
		if err := migrate(data); err != nil {
			fail("%v", err)
		}
		event(data, "start "+version)
	}
	if pidfile != "" {
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fail("%v", err)
		}
	}
	healthy := !strings.HasPrefix(version, "2.")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !healthy {
			http.Error(w, "unhealthy "+version, http.StatusServiceUnavailable)
			return
		}
		if checkTable != "" {
			if err := tableHasRows(r.Context(), checkTable); err != nil {
				fmt.Fprintln(os.Stderr, "testapp: unhealthy:", err)
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok", version)
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, version) })
	srv := &http.Server{Addr: addr, Handler: mux}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("testapp", version, "serving on", addr)
	select {
	case err := <-errc:
		fail("%v", err)
	case s := <-sig:
		srv.Close()
		if data != "" {
			event(data, "stop "+version+" ("+s.String()+")")
		}
		if pidfile != "" {
			os.Remove(pidfile)
		}
	}
}

// migrate brings data's schema forward to this version's.
func migrate(data string) error {
	want, ok := schemas[version]
	if !ok {
		return fmt.Errorf("version %s has no data schema (known: 1.0.0, 1.0.5, 1.1.0, 2.0.0)", version)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	have := 0
	b, err := os.ReadFile(filepath.Join(data, "schema"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if have, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("schema file: %v", err)
		}
	}
	if have > want {
		return fmt.Errorf("data schema %d is newer than version %s knows (%d): restore a backup taken before the upgrade", have, version, want)
	}
	for n := have + 1; n <= want; n++ {
		f, err := os.OpenFile(filepath.Join(data, "data.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "migrated to schema %d by %s\n", n, version)
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(data, "schema"), []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func event(data, what string) {
	f, err := os.OpenFile(filepath.Join(data, "events.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fail("%v", err)
	}
	fmt.Fprintln(f, what)
	f.Close()
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testapp: "+format+"\n", args...)
	os.Exit(1)
}

// tableHasRows connects to the drill's database (HOMELAB_DRILL_PG*) and
// checks that table has rows.
func tableHasRows(ctx context.Context, table string) error {
	port, err := strconv.Atoi(os.Getenv("HOMELAB_DRILL_PGPORT"))
	if err != nil {
		return fmt.Errorf("HOMELAB_DRILL_PGPORT: %v", err)
	}
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return err
	}
	cfg.Host, cfg.Port = os.Getenv("HOMELAB_DRILL_PGHOST"), uint16(port)
	cfg.Database, cfg.User = os.Getenv("HOMELAB_DRILL_PGDATABASE"), os.Getenv("HOMELAB_DRILL_PGUSER")
	cfg.Password = os.Getenv("HOMELAB_DRILL_PGPASSWORD")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, "select count(*) from "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("table %s is empty", table)
	}
	return nil
}
