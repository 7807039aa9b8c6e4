package pgbackrest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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

// start configures the port, the listen address and the socket directory
// in postgresql.auto.conf (with, for a drill, local trust as the only
// pg_hba.conf rule: the socket is in the 0700 data directory), starts the
// server and waits until recovery has finished: recovery.signal is
// removed when the server promotes. A server that stops during recovery
// (a recovery target not reached, a damaged file) is an error with the
// end of its log.
func (c *cluster) start(ctx context.Context, drill bool) error {
	u := c.r.user
	write := func(name, text string, replace bool) error {
		path := filepath.Join(c.dir, name)
		if _, err := os.Stat(path); err == nil && !replace {
			return nil
		}
		if err := atomicfile.Write(path, []byte(text), 0o600, 0o600); err != nil {
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
			hba += drillapp.HBALine
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
	if err := c.pgctl(ctx, "-w", "-t", "86400", "-l", c.logPath(), "-o", "-c config_file="+filepath.Join(c.dir, "postgresql.conf"), "start"); err != nil {
		return fmt.Errorf("start the restored cluster in %s: %w (server log: %s)", c.dir, err, c.logTail())
	}
	return c.awaitPromoted(ctx)
}

// awaitPromoted polls (every 100 ms) pg_controldata for the end of
// recovery: the cluster state "in production" once it has promoted. A
// server that stops before (a recovery target not reached, a damaged
// file) is an error with the end of its log.
func (c *cluster) awaitPromoted(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	name := "pg_controldata"
	if d := c.binDir(); d != "" {
		name = filepath.Join(d, name)
	}
	for {
		out, err := execx.Output(ctx, c.r.user.cmd(execx.Cmd{Name: name, Args: []string{"-D", c.dir}, Env: []string{"LC_ALL=C"}}))
		if err == nil && clusterState(out) == "in production" && c.running() {
			return nil
		}
		if !c.running() {
			return fmt.Errorf("the restored cluster in %s stopped during recovery: %s", c.dir, c.logTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for recovery in %s (pg_controldata: %s %v; log: %s): %w", c.dir, clusterState(out), err, c.logTail(), ctx.Err())
		case <-tick.C:
		}
	}
}

// clusterState is the "Database cluster state" line of pg_controldata.
func clusterState(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Database cluster state:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// running reports whether the server answers on its port.
func (c *cluster) running() bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)), time.Second)
	if err != nil {
		// Not listening yet, or gone: the pid file says which.
		_, perr := os.Stat(filepath.Join(c.dir, "postmaster.pid"))
		return perr == nil
	}
	conn.Close()
	return true
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
// its pid file is there.
func (c *cluster) stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dir, "postmaster.pid")); err != nil {
		return nil
	}
	return c.pgctl(ctx, "-m", "immediate", "-w", "stop")
}

// connect opens a connection over the socket in the data directory.
func (c *cluster) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = c.dir, uint16(c.port)
	cfg.User, cfg.Database = c.r.b.PgBackRest.Cluster.User, c.r.b.PgBackRest.Database
	return pgx.ConnectConfig(ctx, cfg)
}

// drillPrefix names a target's drill directories in the temp directory:
// homelab-pgbackrest-drill-<target>.<run ID> (a target name has no dot).
func drillPrefix(target string) string {
	return filepath.Join(os.TempDir(), "homelab-pgbackrest-drill-"+target+".")
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
	dir := drillPrefix(t.Name()) + runID
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
	if err := r.restore(ctx, snap, dir, backup.Recovery{}); err != nil {
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
	dirs, _ := filepath.Glob(drillPrefix(r.b.Name) + "*")
	var left []string
	for _, d := range dirs {
		c := r.cluster(d, 0)
		if err := errors.Join(c.stop(ctx), os.RemoveAll(d)); err != nil {
			left = append(left, "directory "+d+": "+err.Error())
		}
	}
	return left
}
