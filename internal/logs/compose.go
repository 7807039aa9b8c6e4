package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"homelab/internal/execx"
)

// Compose is the log of one service of a Docker Compose project, as
// `docker compose logs` shows it
// (https://docs.docker.com/reference/cli/docker/compose/logs/): the
// container's stdout and stderr as Docker's logging driver keeps them,
// each line with Docker's timestamp.
//
// It runs
//
//	docker compose --ansi never -p PROJECT [-f FILE] logs --no-color --no-log-prefix
//	    --timestamps --tail N|all [--since RFC3339] [--follow] SERVICE
//
// Docker applies Tail and Since (per container: a service with several
// replicas shows the lines of each, without telling them apart); the
// timestamp --timestamps adds is taken off the text into Line.Time. The
// command is not bounded by the runtime's timeout (a log can be long and
// a follow runs until it is interrupted); with Follow it also ends by
// itself, returning nil, when Compose stops following (no container of
// the service left).
type Compose struct {
	Project string
	Service string
	// File is the compose file; optional: Compose finds the containers by
	// their project label.
	File string
	// Docker is the docker CLI with the compose v2 plugin; default "docker"
	// in PATH.
	Docker string
	// LookupEnv reads homelab's environment for DOCKER_HOST,
	// DOCKER_CONTEXT, DOCKER_CONFIG and the TLS variables, passed on when
	// set; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Log receives what Compose itself says on its output between the log
	// lines (such as "web-1 exited with code 0" while following), told
	// apart by having no timestamp; nil: dropped.
	Log *slog.Logger
}

func (c *Compose) String() string {
	return fmt.Sprintf("compose project %s, service %s", c.Project, c.Service)
}

// Args returns the docker arguments that stream the logs opts selects.
func (c *Compose) Args(opts Options) []string {
	args := []string{"compose", "--ansi", "never", "--project-name", c.Project}
	if c.File != "" {
		args = append(args, "--file", c.File)
	}
	args = append(args, "logs", "--no-color", "--no-log-prefix", "--timestamps")
	if opts.Tail >= 0 {
		args = append(args, "--tail", strconv.Itoa(opts.Tail))
	} else {
		args = append(args, "--tail", "all")
	}
	if !opts.Since.IsZero() {
		args = append(args, "--since", opts.Since.UTC().Format(time.RFC3339Nano))
	}
	if opts.Follow {
		args = append(args, "--follow")
	}
	return append(args, c.Service)
}

// Stream runs docker compose logs (see Compose) and delivers its lines.
// Cancelling ctx interrupts it (SIGINT, then SIGKILL after 5 s) and
// Stream returns ctx.Err(). A failure of docker is an error with
// docker's reason; a docker without the compose plugin is said so.
func (c *Compose) Stream(ctx context.Context, opts Options, emit func(Line) error) error {
	if opts.Tail == 0 && !opts.Follow {
		return nil
	}
	docker := c.Docker
	if docker == "" {
		docker = "docker"
	}
	env := execx.PassEnv(c.LookupEnv, execx.DockerVars...)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var emitErr error
	err := execx.Run(rctx, execx.Cmd{
		Name: docker,
		Args: c.Args(opts),
		Env:  env,
		// Without -f, Compose looks for a compose file in the working
		// directory and its parents: "/" has neither a file nor parents,
		// so the project is found by its containers' labels.
		Dir:         dirOf(c.File),
		GracePeriod: 5 * time.Second,
		OnStdout: func(b []byte) {
			if emitErr != nil {
				return // draining after emit failed
			}
			l, ok := parseDockerLine(b)
			if !ok {
				if c.Log != nil {
					c.Log.Warn(l.Text, "source", c.String())
				}
				return
			}
			if err := emit(l); err != nil {
				emitErr = err
				cancel()
			}
		},
	})
	switch {
	case emitErr != nil:
		return emitErr
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil:
		return nil
	}
	var ce *execx.CmdError
	if errors.As(err, &ce) && ce.ExitCode > 0 {
		reason := lastLine(ce.Stderr)
		if strings.Contains(ce.Stderr, "is not a docker command") {
			reason = "the docker compose v2 plugin is not installed (docker compose version fails): install docker-compose-plugin (or docker-compose-v2)"
		}
		return fmt.Errorf("docker compose logs %s (project %s): %s", c.Service, c.Project, reason)
	}
	return fmt.Errorf("docker compose logs %s (project %s): %w", c.Service, c.Project, err)
}

// dirOf is the directory docker compose runs in: the compose file's, or
// "/".
func dirOf(file string) string {
	if file == "" {
		return "/"
	}
	return filepath.Dir(file)
}

// eraseLine is the ANSI "erase line" Compose (2.26) writes before every
// log line, even with --ansi never.
var eraseLine = []byte("\x1b[2K")

// parseDockerLine splits a line of docker compose logs --timestamps
// --no-log-prefix: "2024-05-01T10:00:00.123456789Z text". A line without
// the timestamp is Compose's own (false).
func parseDockerLine(b []byte) (Line, bool) {
	b = bytes.TrimPrefix(b, eraseLine)
	ts, text, _ := bytes.Cut(b, []byte{' '}) // an empty line may have no space
	if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
		return Line{Time: t, Text: string(text)}, true
	}
	return Line{Text: string(b)}, false
}

// lastLine is the last line of docker's stderr without its "Error: " or
// "Error response from daemon: " prefix.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "Error: "), "Error response from daemon: ")
	if s == "" {
		return "failed without saying why"
	}
	return s
}
