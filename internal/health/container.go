package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"homelab/internal/execx"
	"homelab/internal/lab"
)

// containerState is the part of `docker inspect`'s .State the probe reads.
type containerState struct {
	Status     string // created, running, paused, restarting, removing, exited, dead
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	ExitCode   int
	Error      string
	Health     *struct {
		Status        string // starting, healthy, unhealthy
		FailingStreak int
		Log           []struct {
			ExitCode int
			Output   string
		}
	}
}

// probeContainer asks Docker for the container's state: it must be running
// and, when its image has a HEALTHCHECK, healthy by Docker's own checks.
func probeContainer(ctx context.Context, p *lab.ContainerProbe, o Options) (string, error) {
	docker := o.Docker
	if docker == "" {
		docker = "docker"
	}
	env := execx.PassEnv(o.lookupEnv, execx.DockerVars...)
	out, err := execx.Output(ctx, execx.Cmd{
		Name: docker,
		Args: []string{"inspect", "--type", "container", "--format", "{{json .State}}", p.Name},
		Env:  env,
	})
	if err != nil {
		var ce *execx.CmdError
		if errors.As(err, &ce) && ce.ExitCode > 0 && strings.TrimSpace(ce.Stderr) != "" {
			msg := strings.TrimPrefix(lastLine(ce.Stderr), "Error: ")
			return "", unhealthy("docker inspect: " + strings.TrimPrefix(msg, "Error response from daemon: "))
		}
		if errors.As(err, &ce) {
			return "", fmt.Errorf("docker inspect: %w", ce.Err)
		}
		return "", err
	}
	st, err := parseState(out)
	if err != nil {
		return "", err
	}
	return st.verdict()
}

// parseState reads the JSON line of docker inspect's output, passing over
// anything else the CLI may print (warnings).
func parseState(out []byte) (containerState, error) {
	var st containerState
	for line := range bytes.Lines(out) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		if err := json.Unmarshal(line, &st); err != nil {
			return st, fmt.Errorf("docker inspect: bad state %.80q: %w", line, err)
		}
		return st, nil
	}
	return st, fmt.Errorf("docker inspect: no state in its output %.80q", out)
}

// verdict judges the state: the detail for a healthy container, or an
// unhealthy error.
func (st containerState) verdict() (string, error) {
	switch {
	case st.Paused:
		return "", unhealthy("paused")
	case st.Restarting:
		return "", unhealthyf("restarting (last exit code %d)", st.ExitCode)
	case !st.Running:
		msg := st.Status
		if st.Status == "exited" || st.Status == "dead" {
			msg = fmt.Sprintf("%s (exit code %d)", st.Status, st.ExitCode)
		}
		if st.OOMKilled {
			msg += ", OOM killed"
		}
		if st.Error != "" {
			msg += ": " + st.Error
		}
		return "", unhealthy(msg)
	case st.Health == nil || st.Health.Status == "" || st.Health.Status == "none":
		return "running (no healthcheck)", nil
	case st.Health.Status == "healthy":
		return "running, healthy", nil
	}
	msg := "running, " + st.Health.Status
	if st.Health.Status == "unhealthy" {
		msg += fmt.Sprintf(" (%d failing checks)", st.Health.FailingStreak)
		if n := len(st.Health.Log); n > 0 {
			if out := strings.TrimSpace(st.Health.Log[n-1].Output); out != "" {
				msg += ": " + lastLine(out)
			}
		}
	}
	return "", unhealthy(msg)
}
