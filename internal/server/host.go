package server

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"homelab/internal/status"
)

// pageHost is the Host card of the page: the machine's line and its
// filesystems.
type pageHost struct {
	Line        string // "vm · up 2d 3h · load 0.50 0.25 0.12 · 4 CPUs · memory 2.0 GiB of 8.0 GiB"
	Sampled     string // "2026-11-23 10:10"
	Error       string
	Energy      string // status.EnergyLine, "" without an energy section
	Filesystems []pageFS
	Containers  []pageContainer
}

// pageContainer is a container of a compose service, or a service whose
// containers could not be read (Error).
type pageContainer struct {
	Service, Name, State, Memory, Error string
	Restarts                            int
	Bad                                 bool // not running, or not read
}

type pageFS struct {
	Mount, Used, Size, Free string
	Percent                 int    // used share of the size, 0..100 (the bar)
	FullIn                  string // "17.0 days", or "-"
	Filling                 bool
	Holds                   string
}

// withHost adds the daemon's newest host status (Options.Host), alerts
// (Options.Alerts) and pgbackrest windows (Options.Windows) to rep.
func (s *Server) withHost(rep *status.Report) {
	if s.o.Host != nil {
		rep.AddHost(s.o.Host())
	}
	if s.o.Alerts != nil {
		rep.AddAlerts(s.o.Alerts())
	}
	if s.o.Windows != nil {
		rep.AddWindows(s.o.Windows())
	}
}

// pageAlerts is the Alerts card.
type pageAlerts struct {
	URL, Error                 string
	Firing, Silenced, Resolved []pageAlert
}

type pageAlert struct {
	Name, Severity, Summary, When string
	Why                           string // what silences or inhibits it (Silenced)
	Bad                           bool   // critical
}

func alertsPage(a *status.AlertsStatus, now time.Time) *pageAlerts {
	if a == nil {
		return nil
	}
	p := &pageAlerts{URL: a.URL, Error: a.Error}
	for _, x := range a.Firing {
		p.Firing = append(p.Firing, pageAlert{Name: x.Name, Severity: dashed(x.Severity), Summary: x.Summary,
			When: "since " + status.Ago(x.Since, now), Bad: x.Severity == "critical"})
	}
	for _, x := range a.Silenced {
		p.Silenced = append(p.Silenced, pageAlert{Name: x.Name, Severity: dashed(x.Severity), Summary: x.Summary,
			When: "since " + status.Ago(x.Since, now), Why: x.Why(now)})
	}
	for _, x := range a.Resolved {
		p.Resolved = append(p.Resolved, pageAlert{Name: x.Name, Severity: dashed(x.Severity), Summary: x.Summary,
			When: "resolved " + status.Ago(x.Resolved, now)})
	}
	return p
}

func dashed(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// hostPage is the Host card of h, or nil without one.
func hostPage(h *status.HostStatus) *pageHost {
	if h == nil {
		return nil
	}
	p := &pageHost{Sampled: h.Sampled.Format(timeLayout), Error: h.Error}
	if h.Energy != nil {
		p.Energy = status.EnergyLine(h.Energy)
	}
	if h.Error == "" || h.CPUs > 0 {
		p.Line = fmt.Sprintf("%s · up %s · load %.2f %.2f %.2f · %d CPU%s · memory %s of %s", h.Hostname, status.Age(h.Uptime),
			h.Load1, h.Load5, h.Load15, h.CPUs, plural(h.CPUs), status.IEC(int64(h.MemUsed)), status.IEC(int64(h.MemTotal)))
	}
	for _, f := range h.Filesystems {
		pf := pageFS{Mount: f.Mount, Used: status.IEC(int64(f.Used)), Size: status.IEC(int64(f.Total)),
			Free: status.IEC(int64(f.Avail)), FullIn: "-", Filling: f.Filling, Holds: strings.Join(f.Paths, ", ")}
		if f.Total > 0 {
			pf.Percent = int(f.Used * 100 / f.Total)
		}
		if f.DaysLeft != nil {
			pf.FullIn = fmt.Sprintf("%.1f days", *f.DaysLeft)
		}
		p.Filesystems = append(p.Filesystems, pf)
	}
	for _, res := range h.Containers {
		if res.Err != nil {
			p.Containers = append(p.Containers, pageContainer{Service: res.Service, Name: "-", State: "UNKNOWN", Error: res.Err.Error(), Bad: true})
			continue
		}
		if len(res.Containers) == 0 {
			p.Containers = append(p.Containers, pageContainer{Service: res.Service, Name: "-", State: "no container", Bad: true})
		}
		for _, c := range res.Containers {
			pc := pageContainer{Service: res.Service, Name: c.Name, State: status.ContainerState(c, h.Sampled), Restarts: c.Restarts,
				Memory: "-", Bad: c.State != "running"}
			if !pc.Bad {
				pc.Memory = status.IEC(int64(c.Memory))
			}
			p.Containers = append(p.Containers, pc)
		}
	}
	return p
}

var (
	descFSAvail = prometheus.NewDesc("homelab_filesystem_avail_bytes",
		"Free bytes of a filesystem holding the lab's data, for an unprivileged writer (df's Avail), at the daemon's newest sample.",
		[]string{"mount"}, nil)
	descFSSize = prometheus.NewDesc("homelab_filesystem_size_bytes",
		"Size of a filesystem holding the lab's data, in bytes.",
		[]string{"mount"}, nil)
	descFSDaysLeft = prometheus.NewDesc("homelab_filesystem_days_until_full",
		"Days until the filesystem fills by the least-squares line through the daemon's samples; absent without a forecast.",
		[]string{"mount"}, nil)
	descFSFilling = prometheus.NewDesc("homelab_filesystem_filling",
		"1 when the filesystem is forecast to fill within hosts.warn_days, else 0.",
		[]string{"mount"}, nil)
	descEnergy = prometheus.NewDesc("homelab_energy_joules_total",
		"Energy the host used as the daemon's meter counts it (RAPL, or the lab's watts model: an estimate), in joules.",
		[]string{"source"}, nil)
	descEnergyCost = prometheus.NewDesc("homelab_energy_cost_30d",
		"Estimated cost of the host's energy over 30 days, extrapolated from the measured time, in the lab's currency.",
		[]string{"currency"}, nil)
)

// hostCollector exports the daemon's newest host status: it reads a
// pointer the sampler keeps, so a scrape costs nothing more when nothing
// changed.
type hostCollector struct{ host func() *status.HostStatus }

func (c hostCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFSAvail, descFSSize, descFSDaysLeft, descFSFilling, descEnergy, descEnergyCost} {
		ch <- d
	}
}

func (c hostCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.host()
	if h == nil {
		return
	}
	for _, f := range h.Filesystems {
		ch <- prometheus.MustNewConstMetric(descFSAvail, prometheus.GaugeValue, float64(f.Avail), f.Mount)
		ch <- prometheus.MustNewConstMetric(descFSSize, prometheus.GaugeValue, float64(f.Total), f.Mount)
		if f.DaysLeft != nil {
			ch <- prometheus.MustNewConstMetric(descFSDaysLeft, prometheus.GaugeValue, *f.DaysLeft, f.Mount)
		}
		filling := 0.0
		if f.Filling {
			filling = 1
		}
		ch <- prometheus.MustNewConstMetric(descFSFilling, prometheus.GaugeValue, filling, f.Mount)
	}
	if e := h.Energy; e != nil {
		ch <- prometheus.MustNewConstMetric(descEnergy, prometheus.CounterValue, e.TotalJoules, e.Source)
		if e.Measured() {
			ch <- prometheus.MustNewConstMetric(descEnergyCost, prometheus.GaugeValue, e.Cost30, e.Currency)
		}
	}
}
