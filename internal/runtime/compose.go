package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"homelab/internal/execx"
	"homelab/internal/lab"
)

// composeRuntime drives one service of a Compose project with the
// `docker compose` v2 CLI (https://docs.docker.com/reference/cli/docker/compose/).
type composeRuntime struct {
	name   string
	cfg    *lab.ComposeRuntime
	docker string
}

func newCompose(name string, cfg *lab.ComposeRuntime, o Options) *composeRuntime {
	docker := o.Docker
	if docker == "" {
		docker = "docker"
	}
	return &composeRuntime{name: name, cfg: cfg, docker: docker}
}

func (r *composeRuntime) Kind() string { return lab.RuntimeCompose }

// containerState is the part of `docker inspect`'s .State read here.
type containerState struct {
	Status     string // created, running, paused, restarting, removing, exited, dead
	Restarting bool
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *struct{ Status string }
}

// Status inspects the service's containers (all replicas): Running when
// every one runs, Restarting when one restarts, else Stopped. No
// container at all (never created, or removed) is Stopped. Since is the
// start of the container that started last.
func (r *composeRuntime) Status(ctx context.Context) (Status, error) {
	ids, err := r.containers(ctx)
	if err != nil {
		return Status{}, err
	}
	if len(ids) == 0 {
		return Status{State: Stopped, Detail: "no container"}, nil
	}
	out, err := r.cmd(ctx, "inspect", append([]string{"inspect", "--type", "container", "--format", "{{json .State}}"}, ids...)...)
	if err != nil {
		return Status{}, err
	}
	var states []containerState
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var s containerState
		if err := json.Unmarshal(line, &s); err != nil {
			return Status{}, fmt.Errorf("docker inspect: %w", err)
		}
		states = append(states, s)
	}
	return summarize(states), nil
}

// summarize folds the states of a service's containers into one Status.
func summarize(states []containerState) Status {
	var st Status
	running, healthy, unhealthy, checked := 0, 0, 0, 0
	var details []string
	for _, s := range states {
		d := s.Status
		switch {
		case s.Status == "running":
			running++
			if s.Health != nil && s.Health.Status != "" {
				d += " (" + s.Health.Status + ")"
				checked++
				switch s.Health.Status {
				case HealthHealthy:
					healthy++
				case HealthUnhealthy:
					unhealthy++
				}
			}
			if s.StartedAt.After(st.Since) {
				st.Since = s.StartedAt
			}
		case s.Status == "restarting" || s.Restarting:
			st.State = Restarting
		case s.Status == "exited" || s.Status == "dead":
			d += " (" + strconv.Itoa(s.ExitCode) + ")"
		}
		details = append(details, d)
	}
	switch {
	case st.State == Restarting:
		st.Since = time.Time{}
	case running == len(states):
		st.State = Running
		switch {
		case checked == 0:
		case unhealthy > 0:
			st.Health = HealthUnhealthy
		case healthy == len(states):
			st.Health = HealthHealthy
		default:
			st.Health = HealthStarting
		}
	default:
		st.State = Stopped
		st.Since = time.Time{}
		if running > 0 {
			// Some replicas down: not all running, which is what a stop
			// and start are for.
			st.Detail = fmt.Sprintf("%d of %d running: ", running, len(states))
		}
	}
	st.Detail += strings.Join(details, ", ")
	return st
}

// Start starts the service's existing containers (`docker compose start`),
// or creates them with `docker compose up -d --no-deps` when there are
// none and the lab names the compose file.
func (r *composeRuntime) Start(ctx context.Context) error {
	ids, err := r.containers(ctx)
	if err != nil {
		return err
	}
	args := []string{"start", r.cfg.Service}
	if len(ids) == 0 {
		if r.cfg.File == "" {
			return fmt.Errorf("service %s: compose project %s has no container for %s, and without runtime.compose.file homelab cannot create one", r.name, r.cfg.Project, r.cfg.Service)
		}
		args = []string{"up", "--detach", "--no-deps", r.cfg.Service}
	}
	_, err = r.compose(ctx, args...)
	return err
}

// Stop stops the service's containers (`docker compose stop`), giving them
// stop_timeout between SIGTERM and SIGKILL.
func (r *composeRuntime) Stop(ctx context.Context) error {
	args := []string{"stop"}
	if t := r.cfg.StopTimeout; t > 0 {
		args = append(args, "--timeout", strconv.Itoa(int((t+time.Second-1)/time.Second)))
	}
	_, err := r.compose(ctx, append(args, r.cfg.Service)...)
	return err
}

// containers lists the IDs of the service's containers, stopped ones
// included.
func (r *composeRuntime) containers(ctx context.Context) ([]string, error) {
	out, err := r.compose(ctx, "ps", "--all", "--quiet", r.cfg.Service)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// compose runs `docker compose -p project [-f file] args...`.
func (r *composeRuntime) compose(ctx context.Context, args ...string) ([]byte, error) {
	base := []string{"compose", "--project-name", r.cfg.Project}
	if r.cfg.File != "" {
		base = append(base, "--file", r.cfg.File)
	}
	return r.cmd(ctx, "compose "+args[0], append(base, args...)...)
}

// cmd runs docker with args within the runtime's timeout and returns its
// stdout; a failure names the service and what (such as "compose stop")
// and carries docker's last stderr line.
func (r *composeRuntime) cmd(ctx context.Context, what string, args ...string) ([]byte, error) {
	return r.cmdWithin(ctx, r.cfg.Timeout, what, args...)
}

// cmdWithin is cmd bounded by timeout instead of the runtime's.
func (r *composeRuntime) cmdWithin(ctx context.Context, timeout time.Duration, what string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := execx.Output(ctx, execx.Cmd{Name: r.docker, Args: args, Env: execx.PassEnv(nil, execx.DockerVars...), OutlivesHomelab: true})
	if err != nil {
		var ce *execx.CmdError
		if errors.As(err, &ce) && ctx.Err() == nil && ce.ExitCode > 0 {
			return nil, fmt.Errorf("service %s: docker %s: %s", r.name, what, dockerReason(ce))
		}
		return nil, fmt.Errorf("service %s: docker %s: %w", r.name, what, err)
	}
	return out, nil
}

// dockerReason is the last line of docker's stderr without its
// "Error response from daemon: " prefix, or the exit status.
func dockerReason(ce *execx.CmdError) string {
	s := strings.TrimSpace(ce.Stderr)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "Error: "), "Error response from daemon: ")
	if s == "" {
		return fmt.Sprintf("exit status %d", ce.ExitCode)
	}
	return s
}
