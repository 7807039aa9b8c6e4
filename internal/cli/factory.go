package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"homelab/internal/app"
	"homelab/internal/backup"
	"homelab/internal/lab"
)

// IOStreams are the command's standard streams. Results go to Out,
// decorated (✓/✗) only when StdoutTTY; notes and progress go to ErrOut,
// decorated (bars, ✓/✗) only when StderrTTY.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// StdinTTY, StdoutTTY and StderrTTY report whether those are
	// terminals.
	StdinTTY, StdoutTTY, StderrTTY bool
}

// SystemIO returns the process's streams.
func SystemIO() *IOStreams {
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		StdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		StdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		StderrTTY: term.IsTerminal(int(os.Stderr.Fd()))}
}

// Factory carries what every command needs; flags of the root command
// fill it.
type Factory struct {
	IO      *IOStreams
	LabFlag string
	JSON    bool
	Verbose bool
	Now     func() time.Time

	once sync.Once
	lab  *lab.Lab
	err  error
	// log, when set, replaces the default logger (homelab serve logs
	// JSON off a terminal).
	log *slog.Logger
}

// Logger returns the logger for notes on stderr.
func (f *Factory) Logger() *slog.Logger {
	if f.log != nil {
		return f.log
	}
	level := slog.LevelWarn
	if f.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(f.IO.ErrOut, &slog.HandlerOptions{Level: level}))
}

// Lab loads the lab file once (--lab, ./lab.yaml, $HOMELAB_LAB).
func (f *Factory) Lab() (*lab.Lab, error) {
	f.once.Do(func() { f.lab, f.err = lab.Load(lab.Find(f.LabFlag)) })
	return f.lab, f.err
}

// App returns the working parts of the lab file (see Lab), built with
// the factory's clock and logger.
func (f *Factory) App() (*app.App, error) {
	l, err := f.Lab()
	if err != nil {
		return nil, err
	}
	return &app.App{Lab: l, Now: f.now, Log: f.Logger()}, nil
}

func (f *Factory) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Manager is App().Manager: the lab's backup manager over its catalog
// (waiting for busy targets and locks with wait); the func closes the
// catalog.
func (f *Factory) Manager(ctx context.Context, wait bool) (*backup.Manager, func(), error) {
	a, err := f.App()
	if err != nil {
		return nil, nil, err
	}
	return a.Manager(ctx, wait)
}
