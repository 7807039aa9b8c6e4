package status

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"homelab/internal/host"
	"homelab/internal/runtime"
)

// ForecastWindow is how far back the samples of a filesystem's free space
// go into its days-until-full forecast.
const ForecastWindow = 7 * 24 * time.Hour

// HostStatus is the host homelab runs on, at Sampled.
type HostStatus struct {
	Sampled  time.Time
	Hostname string
	Uptime   time.Duration
	// Load1, Load5, Load15 are the load averages; CPUs the CPUs online.
	Load1, Load5, Load15 float64
	CPUs                 int
	// MemTotal and MemUsed are bytes (host.Info).
	MemTotal, MemUsed uint64
	// Error says why /proc could not be read (the figures above are
	// then zero), or a filesystem not be found.
	Error string
	// Filesystems hold the lab's watched paths (lab.Lab.WatchedPaths),
	// by mount point.
	Filesystems []FilesystemStatus
	// WarnDays is lab.Hosts.WarnDays: a forecast within it is Filling.
	WarnDays int
	// Containers are the containers of the compose services, by service
	// (runtime.Containers); nil when the lab has none.
	Containers []runtime.ContainersResult
	// Energy is the host's energy and cost (energy.go); nil when the lab
	// has no energy section.
	Energy *EnergyStatus
}

// FilesystemStatus is one filesystem of HostStatus.
type FilesystemStatus struct {
	Mount, Source, Type string
	Paths               []string
	// Total, Used and Avail are bytes as df counts them (host.FS).
	Total, Used, Avail uint64
	// FullAt is when the least-squares line through the free space of
	// the last ForecastWindow of samples reaches zero; nil when there is
	// no forecast (too few samples, free space not shrinking).
	FullAt *time.Time
	// DaysLeft is the days from Sampled to FullAt, in tenths; nil
	// without a forecast.
	DaysLeft *float64
	// Filling: DaysLeft is within WarnDays.
	Filling bool
}

// Series is the catalog series (catalog.Sample.Series) of a mount
// point's free bytes.
func Series(mount string) string { return "fs:" + mount }

// HostOf is the host status at now from what /proc said (in, or err when
// it could not be read), the filesystems (host.Filesystems) and, by
// series (Series), their samples of free space; a filesystem's current
// free space counts as one more sample at now. A forecast to fill within
// warnDays marks the filesystem Filling.
func HostOf(in host.Info, err error, fss []host.FS, samples map[string][]host.Sample, warnDays int, now time.Time) HostStatus {
	h := HostStatus{Sampled: now, WarnDays: warnDays}
	if err != nil {
		h.Error = err.Error()
	} else {
		h.Hostname, h.Uptime, h.CPUs = in.Hostname, in.Uptime, in.CPUs
		h.Load1, h.Load5, h.Load15 = in.Load1, in.Load5, in.Load15
		h.MemTotal, h.MemUsed = in.MemTotal, in.MemUsed
	}
	for _, f := range fss {
		fs := FilesystemStatus{Mount: f.Mount, Source: f.Source, Type: f.Type, Paths: f.Paths,
			Total: f.Total, Used: f.Used, Avail: f.Avail}
		var ss []host.Sample
		for _, s := range samples[Series(f.Mount)] {
			if !s.Time.Before(now.Add(-ForecastWindow)) && s.Time.Before(now) {
				ss = append(ss, s)
			}
		}
		ss = append(ss, host.Sample{Time: now, Avail: f.Avail})
		if full, ok := host.Forecast(ss); ok {
			days := host.DaysUntil(full, now)
			fs.FullAt, fs.DaysLeft = &full, &days
			fs.Filling = days <= float64(warnDays)
		}
		h.Filesystems = append(h.Filesystems, fs)
	}
	return h
}

// Filling lists the filesystems forecast to fill within WarnDays.
func (h *HostStatus) Filling() []FilesystemStatus {
	var out []FilesystemStatus
	if h == nil {
		return nil
	}
	for _, f := range h.Filesystems {
		if f.Filling {
			out = append(out, f)
		}
	}
	return out
}

// AddHost records h on r; a filesystem forecast to fill within its
// warning makes r unhealthy. A nil h changes nothing.
func (r *Report) AddHost(h *HostStatus) {
	if h == nil {
		return
	}
	r.Host = h
	if len(h.Filling()) > 0 {
		r.Healthy = false
	}
}

// FillingText is the verdict's phrase for filling filesystems ("1
// filesystem filling"), or "".
func (r Report) FillingText() string {
	n := len(r.Host.Filling())
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d filesystem%s filling", n, plural(n))
}

// FillDetail says when a filling filesystem fills, for a notification:
// "/srv: 12.3 GiB free of 100 GiB, full in 3.5 days (2026-03-04 12:00 UTC)".
func FillDetail(f FilesystemStatus) string {
	s := fmt.Sprintf("%s: %s free of %s", f.Mount, IEC(int64(f.Avail)), IEC(int64(f.Total)))
	if f.DaysLeft != nil && f.FullAt != nil {
		s += fmt.Sprintf(", full in %.1f days (%s)", *f.DaysLeft, f.FullAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return s
}

// writeHost writes the HOST section of RenderText: one line of the
// machine and a table of its filesystems.
func writeHost(b *strings.Builder, h *HostStatus, now time.Time) {
	if h.Error != "" {
		fmt.Fprintf(b, "host not read: %s\n", h.Error)
	} else {
		fmt.Fprintf(b, "%s  up %s  load %.2f %.2f %.2f (%d CPU%s)  memory %s of %s\n", dash(h.Hostname), Age(h.Uptime),
			h.Load1, h.Load5, h.Load15, h.CPUs, plural(h.CPUs), IEC(int64(h.MemUsed)), IEC(int64(h.MemTotal)))
	}
	if h.Energy != nil {
		b.WriteString("energy " + EnergyLine(h.Energy) + "\n")
	}
	if len(h.Filesystems) > 0 {
		tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "FILESYSTEM\tUSED\tSIZE\tFREE\tFULL IN\tHOLDS")
		for _, f := range h.Filesystems {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Mount, IEC(int64(f.Used)), IEC(int64(f.Total)), IEC(int64(f.Avail)),
				fullIn(f), truncate(strings.Join(f.Paths, ", "), 40))
		}
		tw.Flush()
	}
	if len(h.Containers) > 0 {
		tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVICE\tCONTAINER\tSTATE\tRESTARTS\tMEMORY")
		for _, res := range h.Containers {
			if res.Err != nil {
				fmt.Fprintf(tw, "%s\t-\tUNKNOWN\t-\t%s\n", res.Service, clipEnd(oneLine(res.Err.Error()), 50))
				continue
			}
			if len(res.Containers) == 0 {
				fmt.Fprintf(tw, "%s\t-\tno container\t-\t-\n", res.Service)
			}
			for _, c := range res.Containers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", res.Service, c.Name, ContainerState(c, now), c.Restarts, memory(c))
			}
		}
		tw.Flush()
	}
}

// ContainerState is "up 3h 5m" for a running container, its state in
// capitals otherwise.
func ContainerState(c runtime.Container, now time.Time) string {
	if c.State != "running" {
		return strings.ToUpper(c.State)
	}
	if !c.StartedAt.IsZero() && now.After(c.StartedAt) {
		return "up " + Age(now.Sub(c.StartedAt))
	}
	return "up"
}

func memory(c runtime.Container) string {
	if c.State != "running" {
		return "-"
	}
	return IEC(int64(c.Memory))
}

// fullIn is the FULL IN cell: "-" without a forecast, the days left, in
// capitals when within the warning.
func fullIn(f FilesystemStatus) string {
	switch {
	case f.DaysLeft == nil:
		return "-"
	case f.Filling:
		return fmt.Sprintf("FILLING %.1fd", *f.DaysLeft)
	}
	return fmt.Sprintf("%.1fd", *f.DaysLeft)
}

// jsonHost is the "host" object of RenderJSON: bytes, seconds, RFC 3339.
type jsonHost struct {
	Sampled       string    `json:"sampled"`
	Hostname      string    `json:"hostname"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Load          []float64 `json:"load"` // 1, 5 and 15 minutes
	CPUs          int       `json:"cpus"`
	MemTotalBytes uint64    `json:"mem_total_bytes"`
	MemUsedBytes  uint64    `json:"mem_used_bytes"`
	Error         string    `json:"error,omitempty"`
	WarnDays      int       `json:"warn_days"`
	Filesystems   []jsonFS  `json:"filesystems"`
	// Containers are the compose services' containers; left out when the
	// lab has no compose service.
	Containers []jsonContainers `json:"containers,omitempty"`
	// Energy is left out when the lab has no energy section.
	Energy *jsonEnergy `json:"energy,omitempty"`
}

// jsonContainers is one compose service's containers, or why they could
// not be read (error).
type jsonContainers struct {
	Service    string          `json:"service"`
	Error      string          `json:"error,omitempty"`
	Containers []jsonContainer `json:"containers"`
}

type jsonContainer struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	State         string   `json:"state"`
	Restarts      int      `json:"restarts"`
	StartedAt     *string  `json:"started_at"`     // null: never started
	UptimeSeconds *float64 `json:"uptime_seconds"` // null: not running
	MemoryBytes   uint64   `json:"memory_bytes"`
}

type jsonFS struct {
	Mount      string   `json:"mount"`
	Source     string   `json:"source"`
	Type       string   `json:"type"`
	Paths      []string `json:"paths"`
	TotalBytes uint64   `json:"total_bytes"`
	UsedBytes  uint64   `json:"used_bytes"`
	AvailBytes uint64   `json:"avail_bytes"`
	FullAt     *string  `json:"full_at"`   // null: no forecast
	DaysLeft   *float64 `json:"days_left"` // null: no forecast
	Filling    bool     `json:"filling"`
}

func jsonHostOf(h *HostStatus) *jsonHost {
	if h == nil {
		return nil
	}
	j := &jsonHost{Sampled: rfc3339(h.Sampled), Hostname: h.Hostname, UptimeSeconds: h.Uptime.Round(time.Second).Seconds(),
		Load: []float64{h.Load1, h.Load5, h.Load15}, CPUs: h.CPUs, MemTotalBytes: h.MemTotal, MemUsedBytes: h.MemUsed,
		Error: h.Error, WarnDays: h.WarnDays, Filesystems: []jsonFS{}, Energy: jsonEnergyOf(h.Energy)}
	for _, f := range h.Filesystems {
		jf := jsonFS{Mount: f.Mount, Source: f.Source, Type: f.Type, Paths: f.Paths, TotalBytes: f.Total,
			UsedBytes: f.Used, AvailBytes: f.Avail, DaysLeft: f.DaysLeft, Filling: f.Filling}
		if f.FullAt != nil {
			jf.FullAt = optTime(*f.FullAt)
		}
		j.Filesystems = append(j.Filesystems, jf)
	}
	for _, res := range h.Containers {
		jc := jsonContainers{Service: res.Service, Containers: []jsonContainer{}}
		if res.Err != nil {
			jc.Error = res.Err.Error()
		}
		for _, c := range res.Containers {
			x := jsonContainer{ID: c.ID, Name: c.Name, State: c.State, Restarts: c.Restarts, MemoryBytes: c.Memory}
			if !c.StartedAt.IsZero() {
				x.StartedAt = optTime(c.StartedAt)
				if c.State == "running" && h.Sampled.After(c.StartedAt) {
					up := h.Sampled.Sub(c.StartedAt).Round(time.Second).Seconds()
					x.UptimeSeconds = &up
				}
			}
			jc.Containers = append(jc.Containers, x)
		}
		j.Containers = append(j.Containers, jc)
	}
	return j
}
