package pgbackrest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"homelab/internal/atomicfile"
	"homelab/internal/backup"
	"homelab/internal/backup/drillapp"
	"homelab/internal/backup/postgres"
	"homelab/internal/execx"
)

// cluster is a restored data directory started (or to be started) on a
// port of 127.0.0.1, its socket in the data directory.
type cluster struct {
	r    *runner
	dir  string
	port int
	// tcpLogins (a drill with an application) adds drillapp.HBALine to
	// the drill's pg_hba.conf.
	tcpLogins bool
	// pgctlDone receives the outcome of `pg_ctl -w start` of the server
	// this cluster started (nil when start did not run), which start does
	// not always wait for.
	pgctlDone chan error
}

func (r *runner) cluster(dir string, port int) *cluster { return &cluster{r: r, dir: dir, port: port} }

// binDir is where pg_ctl of the data directory's major version is.
func (c *cluster) binDir() string {
	if d := c.r.b.PgBackRest.Cluster.BinDir; d != "" {
		return d
	}
	if v, err := os.ReadFile(filepath.Join(c.dir, "PG_VERSION")); err == nil {
		d := filepath.Join("/usr/lib/postgresql", strings.TrimSpace(string(v)), "bin")
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	return "" // PATH
}

func (c *cluster) pgctl(ctx context.Context, args ...string) error {
	name := "pg_ctl"
	if d := c.binDir(); d != "" {
		name = filepath.Join(d, "pg_ctl")
	}
	return execx.Run(ctx, c.r.user.cmd(execx.Cmd{Name: name, Args: append([]string{"-D", c.dir}, args...), OutlivesHomelab: true}))
}

// logPath is the server log of a started cluster (beside the data).
func (c *cluster) logPath() string { return filepath.Join(c.dir, "homelab-server.log") }

// pollEvery is how often start looks at pg_control and stop at the pid
// file: a drill's RTO should not wait on a coarse tick (pg_ctl's is
// 100 ms).
const pollEvery = 10 * time.Millisecond

// start configures the port, the listen address and the socket directory
// in postgresql.auto.conf (with, for a drill, local trust as the only
// pg_hba.conf rule: the socket is in the 0700 data directory), starts the
// server and waits until recovery has finished: the state in pg_control is
// "in production" (promoted). A server that does not start, or stops
// during recovery (a recovery target not reached, a damaged file), is an
// error with the end of its log. A drill's files are written without
// fsync: the directory is thrown away.
func (c *cluster) start(ctx context.Context, drill bool) error {
	u := c.r.user
	write := func(name, text string, replace bool) error {
		path := filepath.Join(c.dir, name)
		if _, err := os.Stat(path); err == nil && !replace {
			return nil
		}
		var err error
		if drill {
			err = os.WriteFile(path, []byte(text), 0o600)
		} else {
			err = atomicfile.Write(path, []byte(text), 0o600, 0o600)
		}
		if err != nil {
			return err
		}
		return u.chown(path)
	}
	// A cluster whose configuration lives outside the data directory
	// (Debian's /etc/postgresql) restores without these.
	if err := write("postgresql.conf", "", false); err != nil {
		return err
	}
	hba := "local all all peer\n"
	if drill {
		hba = "local all all trust\n"
		if c.tcpLogins {
			hba += drillapp.HBALine(c.r.b.PgBackRest.Cluster.User)
		}
	}
	if err := write("pg_hba.conf", hba, drill); err != nil {
		return err
	}
	auto := filepath.Join(c.dir, "postgresql.auto.conf")
	f, err := os.OpenFile(auto, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := u.chown(auto); err != nil {
		f.Close()
		return err
	}
	_, err = fmt.Fprintf(f, "\n# homelab: the restored cluster's own place\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\narchive_mode = off\nhba_file = '%s'\nident_file = '%s'\n",
		c.port, c.dir, filepath.Join(c.dir, "pg_hba.conf"), filepath.Join(c.dir, "pg_ident.conf"))
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	if err := write("pg_ident.conf", "", false); err != nil {
		return err
	}
	// pg_ctl -w tells a server that did not start; it looks every 100 ms
	// and returns once the server accepts (read-only) connections, before
	// the promotion awaited here, so it is not waited for when the
	// promotion comes first.
	c.pgctlDone = make(chan error, 1)
	go func() {
		c.pgctlDone <- c.pgctl(context.WithoutCancel(ctx), "-w", "-t", "86400", "-l", c.logPath(), "-o", "-c config_file="+filepath.Join(c.dir, "postgresql.conf"), "start")
	}()
	return c.awaitPromoted(ctx)
}

// awaitPromoted polls (every 10 ms) the state in pg_control for the end
// of recovery: "in production", written by the server once it has
// promoted (what pg_controldata shows). A pg_ctl start that fails, or a
// server that stops before (a recovery target not reached, a damaged
// file), is an error with the end of its log.
func (c *cluster) awaitPromoted(ctx context.Context) error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	// The restored pg_control says "in production" (it was copied from a
	// running server) until the server starts recovery and rewrites it:
	// it counts once pg_ctl said the server started, or once another state
	// was seen.
	started := false // pg_ctl said so: from then on the pid file tells whether it runs
	moved := false
	pgctl := c.pgctlDone
	for {
		state, err := controlState(c.dir)
		if err == nil && state != stateInProduction {
			moved = true
		}
		if err == nil && state == stateInProduction && (moved || started) && c.running() {
			return nil
		}
		if started && !c.running() {
			return fmt.Errorf("the restored cluster in %s stopped during recovery: %s", c.dir, c.logTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for recovery in %s (pg_control state %d %v; log: %s): %w", c.dir, state, err, c.logTail(), ctx.Err())
		case err := <-pgctl:
			pgctl = nil
			c.pgctlDone <- err // for stop
			if err != nil {
				return fmt.Errorf("start the restored cluster in %s: %w (server log: %s)", c.dir, err, c.logTail())
			}
			started = true
		case <-tick.C:
		}
	}
}

// stateInProduction is DBState DB_IN_PRODUCTION (PostgreSQL's
// src/include/catalog/pg_control.h, the same value since 9.0).
const stateInProduction = 6

// controlStateName is DBState's name as pg_controldata prints it
// ("Database cluster state: ..."; PostgreSQL's
// src/bin/pg_controldata/pg_controldata.c dbState).
func controlStateName(s int32) string {
	names := []string{"starting up", "shut down", "shut down in recovery", "shutting down",
		"in crash recovery", "in archive recovery", "in production"}
	if s >= 0 && int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("unrecognized status code %d", s)
}

// controlState reads the cluster state from dir/global/pg_control: the
// DBState after the system identifier (uint64), pg_control_version and
// catalog_version_no (uint32 each), in the server's byte order.
func controlState(dir string) (int32, error) {
	f, err := os.Open(filepath.Join(dir, "global", "pg_control"))
	if err != nil {
		return -1, err
	}
	defer f.Close()
	var b [20]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return -1, err
	}
	return int32(binary.NativeEndian.Uint32(b[16:])), nil
}

// running reports whether the server's postmaster is alive: the process
// its pid file names exists and is not a zombie. (Not by connecting: each
// connection forks a backend, and start asks every 10 ms.)
func (c *cluster) running() bool {
	_, ok := ServerPID(c.dir)
	return ok
}

func (c *cluster) logTail() string {
	b, _ := os.ReadFile(c.logPath())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "FATAL") || strings.Contains(lines[i], "PANIC") {
			return strings.TrimSpace(lines[i])
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return "no log"
}

// stop stops the server at once (a throwaway has nothing to flush) when
// its pid file is there. A server this cluster started gets SIGQUIT
// (pg_ctl -m immediate's signal) from homelab itself, which then waits
// for the pid file to go, looking every 10 ms; others go through pg_ctl.
func (c *cluster) stop(ctx context.Context) error {
	pidFile := filepath.Join(c.dir, "postmaster.pid")
	if c.pgctlDone != nil {
		awaitPgctl := func() {
			select { // pg_ctl start ends once the server is up or gone
			case err := <-c.pgctlDone:
				c.pgctlDone <- err
			case <-ctx.Done():
			}
		}
		defer awaitPgctl()
		if _, ok := postmasterPID(pidFile); !ok {
			// Not written yet (the postmaster creates the file, then
			// writes its pid): the server may still be starting.
			awaitPgctl()
		}
		if pid, ok := postmasterPID(pidFile); ok && syscall.Kill(pid, syscall.SIGQUIT) == nil {
			tick := time.NewTicker(pollEvery)
			defer tick.Stop()
			for {
				if _, err := os.Stat(pidFile); errors.Is(err, os.ErrNotExist) {
					return nil
				}
				if syscall.Kill(pid, 0) != nil {
					return nil // gone without removing it
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("stop the restored cluster in %s: %w", c.dir, ctx.Err())
				case <-tick.C:
				}
			}
		}
	}
	if _, err := os.Stat(pidFile); err != nil {
		return nil
	}
	return c.pgctl(ctx, "-m", "immediate", "-w", "stop")
}

// postmasterPID reads the postmaster's process ID, the first line of its
// pid file.
func postmasterPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	return pid, err == nil && pid > 0
}

// connect opens a connection over the socket in the data directory. A
// server that is not yet accepting connections (SQLSTATE 57P03: the end
// of recovery with hot_standby off) is asked again every 10 ms.
func (c *cluster) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = c.dir, uint16(c.port)
	cfg.User, cfg.Database = c.r.b.PgBackRest.Cluster.User, c.r.b.PgBackRest.Database
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "57P03" {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pollEvery):
		}
	}
}

// drillPrefix names a target's drill directories in the temp directory:
// homelab-pgbackrest-drill-<target>-<lab>.<run ID> (backup.DrillDirPrefix).
func drillPrefix(stateDir, target string) string {
	return backup.DrillDirPrefix("pgbackrest", stateDir, target)
}

// Drill restores snap into a temporary data directory, recovering to the
// end of the archived WAL, starts it on a free port of 127.0.0.1, waits
// for recovery to finish (RTO: from the start of the restore until then),
// runs the target's SQL checks over the socket, then, with drill.app, the
// application against it (drillapp.Run: as cluster.user, in the target's
// database, over TCP from 127.0.0.1), and always stops the server and
// removes the directory. Nothing touches the live cluster.
// Directories that earlier drills of the target, killed, left behind are
// stopped and removed first.
func (p *Provider) Drill(ctx context.Context, t backup.Target, snap backup.Snapshot, runID string) (rep backup.DrillReport, err error) {
	r, err := p.runner(t.Spec)
	if err != nil {
		return rep, err
	}
	rep.Leftovers = r.removeDeadDrills(ctx)
	port, err := postgres.FreePort()
	if err != nil {
		return rep, err
	}
	dir := drillPrefix(r.stateDir, t.Name()) + runID
	rep.Place = dir
	c := r.cluster(dir, port)
	c.tcpLogins = t.Spec.Drill.App != nil
	start := time.Now()
	if _, err := r.newDataDir(dir); err != nil {
		return rep, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, c.stop(dctx), os.RemoveAll(dir))
	}()
	if err := r.restore(ctx, snap, dir, backup.Recovery{}, false); err != nil {
		rep.RTO = time.Since(start)
		return rep, err
	}
	if err := c.start(ctx, true); err != nil {
		rep.RTO = time.Since(start)
		return rep, err
	}
	rep.RTO = time.Since(start)
	conn, err := c.connect(ctx)
	if err != nil {
		return rep, fmt.Errorf("connect to the restored cluster: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep.Checks = append(rep.Checks, recoveredTo(ctx, conn, snap))
	for _, chk := range t.Spec.Drill.Checks {
		rep.Checks = append(rep.Checks, postgres.SQLCheck(ctx, conn, chk.SQL))
	}
	if app := t.Spec.Drill.App; app != nil {
		g := t.Spec.PgBackRest
		rep.Checks = append(rep.Checks, drillapp.Run(ctx, app, conn, port, g.Database, g.Cluster.User))
	}
	return rep, nil
}

// recoveredTo is the check that recovery ended promoted, with the time
// recovered to: the last transaction replayed, or, when the archive had
// none after the backup, the backup's stop.
func recoveredTo(ctx context.Context, conn *pgx.Conn, snap backup.Snapshot) backup.CheckResult {
	res := backup.CheckResult{Check: "recovery"}
	var inRecovery bool
	var last *time.Time
	if err := conn.QueryRow(ctx, "select pg_is_in_recovery(), pg_last_xact_replay_timestamp()").Scan(&inRecovery, &last); err != nil {
		res.Detail = err.Error()
		return res
	}
	if inRecovery {
		res.Detail = "still in recovery"
		return res
	}
	to := stopOf(snap)
	if last != nil && last.After(to) {
		to = *last
	}
	res.OK, res.Detail = true, "restored "+snap.ID+", promoted, recovered to "+to.UTC().Format(time.RFC3339)
	return res
}

// removeDeadDrills stops and removes what killed drills of the target
// left; it returns what it could not remove, with the reason.
func (r *runner) removeDeadDrills(ctx context.Context) []string {
	dirs, _ := filepath.Glob(drillPrefix(r.stateDir, r.b.Name) + "*")
	var left []string
	for _, d := range dirs {
		c := r.cluster(d, 0)
		if err := errors.Join(c.stop(ctx), os.RemoveAll(d)); err != nil {
			left = append(left, "directory "+d+": "+err.Error())
		}
	}
	return left
}
