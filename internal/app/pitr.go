package app

import (
	"context"
	"time"

	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/lab"
	"homelab/internal/status"
)

// ReadWindows reads the recoverable window of each pgbackrest target of
// l (status.Window): `pgbackrest info` and `pgbackrest repo-ls` per target
// (pgbackrest.Provider.Window), and the cluster's archive status
// (pgbackrest.Waiting). now gives each reading's time. A target whose
// window cannot be read (within 30 s) has its Error set; ReadWindows
// never fails. It
// returns nil when l has no pgbackrest target. `homelab status` calls it
// at every run; the daemon after each job of such a target and every
// status.WindowRefresh, and the status page and /metrics show what it
// read last.
func ReadWindows(ctx context.Context, l *lab.Lab, now func() time.Time) map[string]status.Window {
	var out map[string]status.Window
	p := &pgbackrest.Provider{StateDir: l.StateDir, Now: now}
	for _, name := range l.BackupNames() {
		b := l.Backups[name]
		if b.Provider != lab.ProviderPgBackRest || b.PgBackRest == nil {
			continue
		}
		if out == nil {
			out = map[string]status.Window{}
		}
		out[name] = readWindow(ctx, p, b, now)
	}
	return out
}

// windowTimeout bounds the pgbackrest commands of one target's reading
// (a repository on S3 that does not answer).
const windowTimeout = 30 * time.Second

// readWindow reads one target's window; see ReadWindows.
func readWindow(ctx context.Context, p *pgbackrest.Provider, b *lab.Backup, now func() time.Time) status.Window {
	ctx, cancel := context.WithTimeout(ctx, windowTimeout)
	defer cancel()
	w := status.Window{ArchiveTimeout: b.PgBackRest.ArchiveTimeout}
	pw, err := p.Window(ctx, backup.Target{Spec: b})
	w.From, w.To, w.WAL, w.Backups = pw.From, pw.To, pw.WALTo, pw.Backups
	if err != nil {
		w.Error = err.Error()
	}
	n, oldest, since, werr := pgbackrest.Waiting(b)
	switch {
	case werr != nil:
		w.Waiting = -1
		if w.Error == "" {
			w.Error = werr.Error()
		}
	default:
		w.Waiting, w.Oldest, w.WaitingSince = n, oldest, since
	}
	w.Read = now().UTC()
	return w
}
