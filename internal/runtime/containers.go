package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"homelab/internal/lab"
)

// Container is one Docker container of a compose service.
type Container struct {
	Service string
	// ID is the short (12-digit) container ID; Name is Docker's name.
	ID, Name string
	// State is Docker's: created, running, paused, restarting, removing,
	// exited or dead.
	State string
	// Restarts is Docker's RestartCount (restarts by its restart policy).
	Restarts int
	// StartedAt is when it last started (zero if never).
	StartedAt time.Time
	// Memory is its memory use in bytes as `docker stats` reports it
	// (cgroup usage less inactive file cache); 0 when not running.
	Memory uint64
}

// ContainersResult is the containers of one compose service, or why they
// could not be read.
type ContainersResult struct {
	Service    string
	Containers []Container
	Err        error
}

// Containers reads the containers of every compose service of services,
// sorted by service: `docker compose ps` for their IDs, `docker inspect`
// for state, restarts and start, and one `docker stats --no-stream` of
// the running ones for memory. Services with another runtime are left
// out. The services are read at once, each within timeout (default 10s).
func Containers(ctx context.Context, services map[string]*lab.Service, o Options, timeout time.Duration) []ContainersResult {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var out []ContainersResult
	for _, name := range slices.Sorted(maps.Keys(services)) {
		if services[name].RuntimeKind() == lab.RuntimeCompose {
			out = append(out, ContainersResult{Service: name})
		}
	}
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() {
			r := newCompose(out[i].Service, services[out[i].Service].Runtime.Compose, o)
			out[i].Containers, out[i].Err = r.containerList(ctx, timeout)
		})
	}
	wg.Wait()
	return out
}

// inspected is the part of `docker inspect` read by containerList.
type inspected struct {
	ID           string
	Name         string
	RestartCount int
	State        containerState
}

// statsLine is one line of `docker stats --format '{{json .}}'`.
type statsLine struct {
	ID       string
	MemUsage string // "12.5MiB / 23.51GiB"
}

func (r *composeRuntime) containerList(ctx context.Context, timeout time.Duration) ([]Container, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ids, err := r.containers(ctx)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	out, err := r.cmdWithin(ctx, timeout, "inspect", append([]string{"inspect", "--type", "container", "--format", "{{json .}}"}, ids...)...)
	if err != nil {
		return nil, err
	}
	var cs []Container
	var running []string
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var in inspected
		if err := json.Unmarshal(line, &in); err != nil {
			return nil, fmt.Errorf("service %s: docker inspect: %w", r.name, err)
		}
		c := Container{Service: r.name, ID: short(in.ID), Name: strings.TrimPrefix(in.Name, "/"), State: in.State.Status,
			Restarts: in.RestartCount}
		if !in.State.StartedAt.IsZero() && in.State.StartedAt.Year() > 1 {
			c.StartedAt = in.State.StartedAt
		}
		if c.State == "running" {
			running = append(running, c.ID)
		}
		cs = append(cs, c)
	}
	if len(running) > 0 {
		out, err := r.cmdWithin(ctx, timeout, "stats", append([]string{"stats", "--no-stream", "--no-trunc", "--format", "{{json .}}"}, running...)...)
		if err != nil {
			return nil, err
		}
		mem := map[string]uint64{}
		for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
			var s statsLine
			if err := json.Unmarshal(line, &s); err != nil {
				return nil, fmt.Errorf("service %s: docker stats: %w", r.name, err)
			}
			used, _, _ := strings.Cut(s.MemUsage, "/")
			if mem[short(s.ID)], err = ParseSize(strings.TrimSpace(used)); err != nil {
				return nil, fmt.Errorf("service %s: docker stats: %w", r.name, err)
			}
		}
		for i := range cs {
			cs[i].Memory = mem[cs[i].ID]
		}
	}
	return cs, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// sizeUnits are the units of docker's sizes (go-units: binary for
// memory, "B", "KiB", "MiB", ...; decimal "kB", "MB", ... also read).
var sizeUnits = map[string]float64{
	"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
}

// ParseSize reads a size as docker prints it ("12.5MiB", "0B", "1.2GB")
// in bytes.
func ParseSize(s string) (uint64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	u, ok := sizeUnits[s[i:]]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, s[i:])
	}
	return uint64(n * u), nil
}
