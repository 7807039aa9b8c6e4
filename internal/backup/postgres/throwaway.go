package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/drillapp"
	"homelab/internal/execx"
	"homelab/internal/lab"
)

// throwawayPrefix names a target's throwaway-cluster drill directories:
// homelab-pg-drill-<target>-<lab>.<run ID> in the temp directory
// (backup.DrillDirPrefix of the lab's state directory).
func throwawayPrefix(stateDir, target string) string {
	return backup.DrillDirPrefix("pg", stateDir, target)
}

// throwaway is a cluster made for one drill: DIR/data, its socket in DIR.
type throwaway struct {
	dir, bin string
	port     int
	runAs    *user.User // nil: homelab itself
}

// cmd runs a PostgreSQL program of bin as the cluster's owner (initdb
// refuses root: as root, the user postgres, through runuser).
func (w *throwaway) cmd(name string, args ...string) execx.Cmd {
	c := execx.Cmd{Name: filepath.Join(w.bin, name), Args: args, Env: []string{"LC_ALL=C.UTF-8"}, OutlivesHomelab: name == "pg_ctl"}
	if w.runAs != nil {
		c.Args = append([]string{"-u", w.runAs.Username, "--", c.Name}, c.Args...)
		c.Name = "runuser"
	}
	return c
}

func (w *throwaway) stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(w.dir, "data", "postmaster.pid")); err != nil {
		return nil
	}
	return execx.Run(ctx, w.cmd("pg_ctl", "-D", filepath.Join(w.dir, "data"), "-m", "immediate", "-w", "stop"))
}

// drillThrowaway is the drill with drill.instance throwaway: initdb a
// cluster of the source server's major version (its binaries in
// /usr/lib/postgresql/<major>/bin) in a temporary directory, start it on
// a free port of 127.0.0.1 with its socket in that directory (trust, for
// the socket only), restore the dump into a database named like the
// source's (pg_restore --no-owner --no-privileges: the source's roles do
// not exist there), run the checks, then, with drill.app, the application
// against it (drillapp.Run: as postgres, the cluster's superuser, in that
// database, over TCP from 127.0.0.1), and always stop and remove it. RTO is
// from initdb until the restore finished. The source server is only asked
// its version.
func (p *Provider) drillThrowaway(ctx context.Context, t backup.Target, snap backup.Snapshot, runID string) (rep backup.DrillReport, err error) {
	src, err := connOf(t.Spec.Source)
	if err != nil {
		return rep, err
	}
	sc, err := src.connect(ctx, t.Spec.Source.Database)
	if err != nil {
		return rep, err
	}
	var num int
	err = sc.QueryRow(ctx, "select current_setting('server_version_num')::int").Scan(&num)
	sc.Close(context.WithoutCancel(ctx))
	if err != nil {
		return rep, fmt.Errorf("read the source server's version: %w", err)
	}
	w := &throwaway{bin: filepath.Join("/usr/lib/postgresql", strconv.Itoa(num/10000), "bin")}
	if _, err := os.Stat(filepath.Join(w.bin, "initdb")); err != nil {
		return rep, fmt.Errorf("the throwaway drill needs PostgreSQL %d's server binaries (initdb in %s): %w", num/10000, w.bin, err)
	}
	if os.Geteuid() == 0 {
		if w.runAs, err = user.Lookup("postgres"); err != nil {
			return rep, fmt.Errorf("the throwaway drill runs its cluster as user postgres when homelab is root: %w", err)
		}
	}
	rep.Leftovers = w.removeDead(ctx, p.StateDir, t.Name())
	if w.port, err = FreePort(); err != nil {
		return rep, err
	}
	w.dir = throwawayPrefix(p.StateDir, t.Name()) + runID
	rep.Place = "cluster " + w.dir
	start := time.Now()
	if err := os.Mkdir(w.dir, 0o700); err != nil {
		return rep, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, w.stop(dctx), os.RemoveAll(w.dir))
	}()
	if w.runAs != nil {
		uid, _ := strconv.Atoi(w.runAs.Uid)
		gid, _ := strconv.Atoi(w.runAs.Gid)
		if err := os.Chown(w.dir, uid, gid); err != nil {
			return rep, err
		}
	}
	data := filepath.Join(w.dir, "data")
	if err := execx.Run(ctx, w.cmd("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")); err != nil {
		return rep, fmt.Errorf("initdb the throwaway cluster: %w", err)
	}
	// Trust over the socket only: it is in the 0700 directory. An
	// application logs in over TCP with the password drillapp sets.
	hba := "local all all trust\n"
	if t.Spec.Drill.App != nil {
		hba += drillapp.HBALine("postgres")
	}
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return rep, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c full_page_writes=off", w.port, w.dir)
	if err := execx.Run(ctx, w.cmd("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(w.dir, "log"), "-w", "-t", "600", "start")); err != nil {
		return rep, fmt.Errorf("start the throwaway cluster: %w", err)
	}
	c := conn{src: lab.Source{Host: w.dir, Port: w.port, User: "postgres"}}
	db := t.Spec.Source.Database
	admin, err := c.connect(ctx, "postgres")
	if err != nil {
		return rep, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if err := createDB(ctx, admin, db, ""); err != nil {
		return rep, err
	}
	if err := p.restore(ctx, t, c, snap, db, true, "--no-owner", "--no-privileges"); err != nil {
		rep.RTO = time.Since(start)
		return rep, err
	}
	rep.RTO = time.Since(start)
	rep.Checks = append(rep.Checks, backup.CheckResult{Check: "pg_restore", OK: true,
		Detail: fmt.Sprintf("restored into a throwaway PostgreSQL %d cluster on 127.0.0.1:%d", num/10000, w.port)})
	if err := runChecks(ctx, c, db, t.Spec.Drill.Checks, &rep); err != nil {
		return rep, err
	}
	if app := t.Spec.Drill.App; app != nil {
		rep.Checks = append(rep.Checks, drillapp.Run(ctx, app, admin, w.port, db, "postgres"))
	}
	return rep, nil
}

// removeDead stops and removes the clusters killed drills of the target
// left; it returns what it could not remove, with the reason.
func (w *throwaway) removeDead(ctx context.Context, stateDir, target string) []string {
	dirs, _ := filepath.Glob(throwawayPrefix(stateDir, target) + "*")
	var left []string
	for _, d := range dirs {
		old := &throwaway{dir: d, bin: w.bin, runAs: w.runAs}
		if err := errors.Join(old.stop(ctx), os.RemoveAll(d)); err != nil {
			left = append(left, "cluster "+d+": "+err.Error())
		}
	}
	return left
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago,
// for a throwaway server. It is picked outside the kernel's ephemeral
// range (net.ipv4.ip_local_port_range, default 32768-60999), where a
// port handed out a moment ago by the kernel can be the local port of a
// client connection by the time the server binds it: the server then
// starts without its TCP socket ("could not bind IPv4 address") and an
// application cannot reach it.
func FreePort() (int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	const first = 10000 // above the usual fixed ports of services
	var err error
	for range 100 {
		if lo <= first {
			break
		}
		port := first + rand.IntN(lo-first)
		var l net.Listener
		if l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
			return port, nil
		}
	}
	// No room below the ephemeral range: let the kernel choose.
	l, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		return 0, errors.Join(err, lerr)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
