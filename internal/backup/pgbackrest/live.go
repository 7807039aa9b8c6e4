package pgbackrest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"homelab/internal/backup"
	"homelab/internal/execx"
)

// ServerPID returns the pid of the PostgreSQL server that runs in
// dataDir: the first line of its postmaster.pid, when that process is
// alive (kill -0). ok is false when there is no pid file, or its process
// is gone (a stale file left by a crash).
func ServerPID(dataDir string) (pid int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err = strconv.Atoi(string(bytes.TrimSpace(first)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	// An exited server its parent has not reaped yet runs no more.
	if st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); err == nil {
		if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
			return 0, false
		}
	}
	return pid, true
}

// AwaitPromoted waits (polling every 200 ms) until the target's live
// cluster accepts connections on its socket (pg_isready -h socket_dir -p
// port: no credentials needed) and has finished recovery (the state in
// its global/pg_control, read as controlState does: "in production",
// which the server writes when it promotes). It fails when the server stops on the
// way (a recovery target not reached, a damaged file: postmaster.pid
// gone), or when ctx ends, with the last states seen.
func (p *Provider) AwaitPromoted(ctx context.Context, t backup.Target) error {
	r, err := p.runner(t.Spec)
	if err != nil {
		return err
	}
	cl := t.Spec.PgBackRest.Cluster
	c := r.cluster(cl.DataDir, cl.Port)
	bin := c.tool
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var state, ready string
	for {
		rerr := execx.Run(ctx, execx.Cmd{Name: bin("pg_isready"), Args: []string{"-q", "-h", cl.SocketDir, "-p", strconv.Itoa(cl.Port)}})
		ready = "accepting connections"
		if rerr != nil {
			ready = "not accepting connections (" + rerr.Error() + ")"
		}
		// Read after pg_isready answered: until the server starts recovery
		// pg_control holds the restored copy's "in production", and a hot
		// standby accepts connections while in recovery.
		st, err := controlState(cl.DataDir)
		state = controlStateName(st)
		if err != nil {
			state = err.Error()
		}
		if rerr == nil && state == "in production" {
			return nil
		}
		if _, running := ServerPID(cl.DataDir); !running {
			return fmt.Errorf("the cluster in %s stopped before it finished recovery (cluster state: %s); see its server log", cl.DataDir, state)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the cluster in %s to finish recovery (cluster state: %s; %s): %w", cl.DataDir, state, ready, ctx.Err())
		case <-tick.C:
		}
	}
}

// tool is the path of PostgreSQL's program name (pg_controldata,
// pg_isready) beside the cluster's pg_ctl: in binDir, else beside the
// file a pg_ctl link there points to (a bin_dir of links), else PATH.
func (c *cluster) tool(name string) string {
	d := c.binDir()
	if d == "" {
		return name
	}
	if _, err := os.Stat(filepath.Join(d, name)); err == nil {
		return filepath.Join(d, name)
	}
	if real, err := filepath.EvalSymlinks(filepath.Join(d, "pg_ctl")); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(real), name)); err == nil {
			return filepath.Join(filepath.Dir(real), name)
		}
	}
	return name
}

// heldArchiving is the line RestoreLive has pgbackrest restore write to
// the restored cluster's postgresql.auto.conf (among its recovery
// settings): an empty archive_command, which holds archiving (PostgreSQL
// keeps the WAL in pg_wal until a command is set) and overrides the
// cluster's own setting (postgresql.conf or earlier in the file).
const heldArchiving = "archive_command = ''"

// ResumeArchiving lets the cluster restored in place into dir (by
// RestoreLive, running on the target's port and socket) archive again:
// it removes heldArchiving from dir/postgresql.auto.conf (written aside
// and renamed, the OS user's) and has the server reload its
// configuration (psql -c 'select pg_reload_conf()' as the OS user over
// the socket); the archiver then pushes the WAL kept meanwhile,
// beginning with the new timeline's history file. Idempotent. Errors:
// the file's, psql's as a *execx.CmdError.
func (p *Provider) ResumeArchiving(ctx context.Context, t backup.Target, dir string) error {
	r, err := p.runner(t.Spec)
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "postgresql.auto.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		return err
	}
	var kept [][]byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if string(bytes.TrimSpace(line)) != heldArchiving {
			kept = append(kept, line)
		}
	}
	if out := bytes.Join(kept, nil); !bytes.Equal(out, b) {
		tmp := conf + ".homelab-tmp"
		if err := os.WriteFile(tmp, out, 0o600); err != nil {
			return err
		}
		if err := errors.Join(r.user.chown(tmp), os.Rename(tmp, conf)); err != nil {
			return fmt.Errorf("resume archiving in %s: %w", conf, err)
		}
	}
	cl := t.Spec.PgBackRest.Cluster
	c := r.cluster(cl.DataDir, cl.Port)
	args := []string{"-XAtq", "-v", "ON_ERROR_STOP=1", "-h", cl.SocketDir, "-p", strconv.Itoa(cl.Port), "-U", cl.User, "-d", "postgres", "-c", "select pg_reload_conf()"}
	if err := execx.Run(ctx, r.user.cmd(execx.Cmd{Name: c.tool("psql"), Args: args})); err != nil {
		return fmt.Errorf("resume archiving: reload the configuration of the cluster in %s: %w", dir, err)
	}
	return nil
}
