package logs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"homelab/internal/lab"
)

// Line is one line of a log.
type Line struct {
	// Time is when the line was logged: Docker's timestamp for compose,
	// the line's own leading timestamp for a file (formats on File). Zero
	// when unknown.
	Time time.Time
	// Text is the line without its newline (nor a carriage return before
	// it).
	Text string
}

// Options say which lines Stream delivers.
type Options struct {
	// Tail is how many of the last lines to deliver: -1 for all, 0 for none
	// (with Follow: only the lines written from now on).
	Tail int
	// Follow keeps delivering lines as they are written, until the
	// context ends.
	Follow bool
	// Since, when not zero, keeps only the lines logged at or after it.
	// With Tail, the last Tail lines of those are delivered.
	Since time.Time
}

// Source is where a service's logs are: a file (File), a Compose
// service (Compose) or a systemd unit's journal (Journal).
type Source interface {
	// Stream calls emit with each line opts selects, oldest first.
	// Without opts.Follow it returns nil after the last line. With it, it
	// delivers new lines as they come until ctx ends, and then returns
	// ctx.Err(). When emit returns an error, Stream stops and returns an
	// error that wraps it (errors.Is); when the source cannot be read, an
	// error saying why.
	Stream(ctx context.Context, opts Options, emit func(Line) error) error
	// String says where the logs are, for messages: "file /var/log/x.log",
	// "compose project media, service jellyfin".
	String() string
}

var (
	// ErrNoSource is wrapped by For when the service has no log source:
	// neither logs.file nor a runtime that keeps logs.
	ErrNoSource = errors.New("no log source")
)

// Config is what the sources need besides the lab file.
type Config struct {
	// LabPath is the lab file, named in the error for a service without a
	// log source.
	LabPath string
	// Docker is the docker CLI (with the compose v2 plugin); default
	// "docker" in PATH.
	Docker string
	// LookupEnv reads homelab's environment for the variables passed on
	// to docker (DOCKER_HOST, ...); default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Log receives notes (a followed file gone missing, Compose saying a
	// container exited); nil: none.
	Log *slog.Logger
	// Now is the clock (syslog timestamps have no year); default
	// time.Now.
	Now func() time.Time
	// Location is the time zone of timestamps without one; default
	// time.Local.
	Location *time.Location
}

// For returns the source of svc's logs:
//
//   - logs.file, when set: the operator saying where the logs are wins
//     over the runtime;
//   - else a compose runtime: `docker compose logs` of its service;
//   - else a systemd runtime: the unit's journal, read with journalctl;
//   - else an error wrapping ErrNoSource that says to set logs.file.
func For(svc *lab.Service, cfg Config) (Source, error) {
	switch {
	case svc.Logs != nil && svc.Logs.File != "":
		return &File{Path: svc.Logs.File, Log: cfg.Log, Now: cfg.Now, Location: cfg.Location}, nil
	case svc.RuntimeKind() == lab.RuntimeCompose:
		c := svc.Runtime.Compose
		return &Compose{Project: c.Project, Service: c.Service, File: c.File, Docker: cfg.Docker, LookupEnv: cfg.LookupEnv, Log: cfg.Log}, nil
	case svc.RuntimeKind() == lab.RuntimeSystemd:
		u := svc.Runtime.Systemd
		return &Journal{Unit: u.Unit, User: u.User, Log: cfg.Log}, nil
	case svc.RuntimeKind() == lab.RuntimeExec:
		return nil, fmt.Errorf("service %s: %w: an exec runtime keeps no logs: set services.%s.logs.file in %s to the file it writes",
			svc.Name, ErrNoSource, svc.Name, cfg.LabPath)
	}
	return nil, fmt.Errorf("service %s: %w: set services.%s.logs.file in %s to its log file (or give it a compose runtime)",
		svc.Name, ErrNoSource, svc.Name, cfg.LabPath)
}
