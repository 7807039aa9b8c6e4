package daemon

import (
	"context"
	"time"

	"homelab/internal/lab"
	"homelab/internal/status"
)

// ReadWindowsFunc reads the recoverable windows of l's pgbackrest targets,
// each reading timed by now (app.ReadWindows); nil when l has none.
type ReadWindowsFunc func(ctx context.Context, l *lab.Lab, now func() time.Time) map[string]status.Window

// Windows returns the pgbackrest targets' recoverable windows as the
// newest reading saw them, or nil (no reading yet, no such target, or no
// Config.ReadWindows). The status page, the API and /metrics read it
// instead of running pgbackrest per request.
func (d *Daemon) Windows() map[string]status.Window {
	if p := d.windows.Load(); p != nil {
		return *p
	}
	return nil
}

// RefreshWindows reads the windows once (Config.ReadWindows). A target
// whose reading fails keeps the values of its last good one, with the
// new Error: a repository that cannot be reached for a moment does not
// blank the page.
func (d *Daemon) RefreshWindows(ctx context.Context) {
	if d.cfg.ReadWindows == nil {
		return
	}
	st := d.state.Load()
	ws := d.cfg.ReadWindows(ctx, st.lab, d.cfg.Now)
	old := d.Windows()
	for name, w := range ws {
		if prev, ok := old[name]; ok && w.Error != "" && prev.Error == "" {
			prev.Error = w.Error
			ws[name] = prev
		}
	}
	d.windows.Store(&ws)
}

// refreshWindows reads the windows at start, every status.WindowRefresh,
// and whenever windowCh says a job of a pgbackrest target ended or the lab
// was reloaded, until ctx ends.
func (d *Daemon) refreshWindows(ctx context.Context) {
	for {
		d.RefreshWindows(ctx)
		timer := time.NewTimer(status.WindowRefresh)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-d.windowCh:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// windowsChanged asks for a new reading of the windows when target (""
// for every target: a reload) is a pgbackrest target of st's lab. It does
// not block.
func (d *Daemon) windowsChanged(st *labState, target string) {
	if b := st.lab.Backups[target]; target != "" && (b == nil || b.Provider != lab.ProviderPgBackRest) {
		return
	}
	select {
	case d.windowCh <- struct{}{}:
	default:
	}
}
