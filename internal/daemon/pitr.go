package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"homelab/internal/lab"
	"homelab/internal/notify"
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
// blank the page. A target whose archiving is newly stuck
// (status.Window.Stuck) sends one archiving_stuck notification and
// records a warning event; once it moves again, a later stuck is sent
// again. An AlertKeeper is told which are stuck now.
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

	var stuck []notify.Event
	for _, name := range slices.Sorted(maps.Keys(ws)) {
		w := ws[name]
		if !w.Stuck() {
			delete(d.stuckSent, name)
			continue
		}
		ev := notify.Event{Kind: notify.ArchivingStuck, Lab: st.lab.Name, Target: name, Job: "archiving", Time: w.Read, Detail: stuckDetail(w)}
		stuck = append(stuck, ev)
		if d.stuckSent[name] {
			continue
		}
		d.stuckSent[name] = true
		st.notifier.Notify(ev)
		d.log.Warn("WAL archiving stuck", "target", name, "detail", ev.Detail)
		d.event(ctx, "warn", name, notify.ArchivingStuck, "WAL archiving stuck: "+ev.Detail)
	}
	for name := range d.stuckSent {
		if _, ok := ws[name]; !ok {
			delete(d.stuckSent, name) // no longer a pgbackrest target
		}
	}
	if k, ok := st.notifier.(AlertKeeper); ok {
		k.Keep(notify.ArchivingStuck, stuck)
	}
}

// stuckDetail says what waits since when, and where the window ends.
func stuckDetail(w status.Window) string {
	return fmt.Sprintf("%d WAL segments wait for the repository, the oldest %s since %s; the recoverable window ends at %s (%s)",
		w.Waiting, w.Oldest, w.WaitingSince.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339), w.WAL)
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
