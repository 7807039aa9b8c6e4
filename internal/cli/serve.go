package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/spf13/cobra"

	"homelab/internal/app"
	"homelab/internal/backup"
	"homelab/internal/daemon"
	"homelab/internal/lab"
	"homelab/internal/server"
)

// ServeOptions are the options of homelab serve.
type ServeOptions struct {
	IO *IOStreams
	F  *Factory
	// Listen overrides the lab file's serve.listen.
	Listen string
	// Reload delivers reload requests (SIGHUP); nil: none.
	Reload <-chan os.Signal
}

// NewCmdServe returns `homelab serve`.
func NewCmdServe(f *Factory, runF func(*ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: f.IO, F: f}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "The daemon: scheduled backups, prunes, drills and checks, notifications, status page and metrics",
		Long: `Run the lab unattended: each target's backup on its schedule (followed by a
prune), its restore drill, and each repository's check; a job missed while
the daemon was down runs once on start. Jobs on one repository run one at a
time. Failures, overdue targets and recoveries are notified (lab file
notify:). The status page, /api/v1/status, /api/v1/runs, /metrics and
/healthz are served on serve.listen (default 127.0.0.1:8470).

SIGTERM or SIGINT interrupts running jobs (recorded as interrupted) and
exits; SIGHUP reloads the lab file (an invalid one is reported and the old
one keeps running). Logs go to stderr, as JSON when it is not a terminal.

` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Listen, "listen", "", "HTTP address (default: the lab file's serve.listen)")
	return cmd
}

// serveLogger logs to stderr: text on a terminal, JSON otherwise.
func serveLogger(io *IOStreams, verbose bool) *slog.Logger {
	o := &slog.HandlerOptions{Level: slog.LevelInfo}
	if verbose {
		o.Level = slog.LevelDebug
	}
	if io.StderrTTY {
		return slog.New(slog.NewTextHandler(io.ErrOut, o))
	}
	return slog.New(slog.NewJSONHandler(io.ErrOut, o))
}

func runServe(ctx context.Context, opts *ServeOptions) error {
	f := opts.F
	f.log = serveLogger(opts.IO, f.Verbose)
	log := f.log
	a, err := f.App()
	if err != nil {
		return err
	}
	l := a.Lab
	addr := l.Serve.Listen
	if opts.Listen != "" {
		addr = opts.Listen
	}
	token, err := serveToken(l)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(l.StateDir, 0o700); err != nil {
		return err
	}
	store, err := a.OpenCatalog(ctx)
	if err != nil {
		return err
	}
	defer store.Close()

	// Each generation of the lab file (SIGHUP reloads it) gets its parts
	// from its own app.App.
	appOf := func(l *lab.Lab, log *slog.Logger) *app.App { return &app.App{Lab: l, Now: f.now, Log: log} }
	d, err := daemon.New(daemon.Config{
		Lab:        l,
		Catalog:    store,
		NewManager: func(l *lab.Lab) *backup.Manager { return appOf(l, log).NewManager(store, true) },
		NewNotifier: func(l *lab.Lab, log *slog.Logger) (daemon.Notifier, error) {
			n, err := appOf(l, log).Notifier()
			if err != nil {
				return nil, err // not a nil *notify.Notifier in a non-nil interface
			}
			return app.WithAlertPush(n, l, log)
		},
		Now:         f.now,
		Log:         log,
		SampleHost:  (&app.HostSampler{}).Sample,
		ReadAlerts:  app.ReadAlerts,
		ReadWindows: app.ReadWindows,
	})
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{
		Addr:    addr,
		Token:   token,
		Lab:     d.Lab,
		Catalog: store,
		Now:     f.now,
		Jobs:    func() []server.JobInfo { return serverJobs(d.Jobs()) },
		Host:    d.Host,
		Alerts:  d.Alerts,
		Windows: d.Windows,
		Refresh: l.Serve.Refresh,
		Log:     log,
	})
	if err != nil {
		return usageErr(err.Error())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	reload := opts.Reload
	if reload == nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		reload = hup
	}
	log.Info("serving", "url", "http://"+ln.Addr().String()+"/", "auth", token != "")

	// The daemon's parts run as one group: when one returns, all stop.
	// Main's context ends on SIGINT/SIGTERM.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var g run.Group
	var daemonErr error
	g.Add(func() error { daemonErr = d.Run(dctx); return daemonErr }, func(error) { cancel() })
	g.Add(func() error { return srv.Serve(ln) }, func(error) {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	})
	g.Add(func() error {
		for {
			select {
			case <-ctx.Done():
				log.Info("signal received: stopping")
				return nil
			case <-dctx.Done():
				return nil
			case <-reload:
				log.Info("SIGHUP: reloading the lab file")
				d.Reload()
			}
		}
	}, func(error) { cancel() })
	err = g.Run()
	if daemonErr != nil {
		return daemonErr
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveToken reads the HTTP bearer token named by serve.token_env or
// serve.token_file ("" when neither is set).
func serveToken(l *lab.Lab) (string, error) {
	v, err := l.Serve.TokenSecret().Resolve()
	if err != nil {
		return "", fmt.Errorf("serve.%w", err)
	}
	return v, nil
}

func serverJobs(jobs []daemon.JobInfo) []server.JobInfo {
	out := make([]server.JobInfo, len(jobs))
	for i, j := range jobs {
		out[i] = server.JobInfo{Kind: string(j.Key.Kind), Name: j.Key.Name, Next: j.Next, Running: j.Running, Queued: j.Queued}
	}
	return out
}
