package server

import (
	"fmt"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

// Process metrics: the names and help of client_golang's process
// collector (collectors.NewProcessCollector), which this one replaces.
var (
	descProcessCPU = prometheus.NewDesc("process_cpu_seconds_total",
		"Total user and system CPU time spent in seconds.", nil, nil)
	descProcessOpenFDs = prometheus.NewDesc("process_open_fds",
		"Number of open file descriptors.", nil, nil)
	descProcessMaxFDs = prometheus.NewDesc("process_max_fds",
		"Maximum number of open file descriptors.", nil, nil)
	descProcessVsize = prometheus.NewDesc("process_virtual_memory_bytes",
		"Virtual memory size in bytes.", nil, nil)
	descProcessMaxVsize = prometheus.NewDesc("process_virtual_memory_max_bytes",
		"Maximum amount of virtual memory available in bytes.", nil, nil)
	descProcessRSS = prometheus.NewDesc("process_resident_memory_bytes",
		"Resident memory size in bytes.", nil, nil)
	descProcessStart = prometheus.NewDesc("process_start_time_seconds",
		"Start time of the process since unix epoch in seconds.", nil, nil)
)

// processCollector reports the process metrics of client_golang's
// process collector, with the same names, help and values, at a fraction
// of its cost per scrape: that collector reads and parses /proc/stat (for
// the boot time, to compute the start time), /proc/self/limits and
// /proc/self/net/netstat at every scrape, which made it half of a cached
// scrape's CPU. This one reads the start time once (it cannot change) and
// the limits with getrlimit(2); CPU time, virtual and resident memory
// (/proc/self/stat, with procfs) and open descriptors (the size of
// /proc/self/fd) are read at every scrape, as they change all the time.
//
// It leaves out process_network_receive_bytes_total and
// process_network_transmit_bytes_total: despite their names they are the
// totals of the whole network namespace (/proc/self/net/netstat), which
// node_exporter reports where they are wanted, and reading them cost as
// much as the rest of the process metrics together.
//
// A metric whose file cannot be read is left out, as the library does
// without ReportErrors.
type processCollector struct {
	proc  procfs.Proc
	start float64 // process_start_time_seconds
	err   error   // of procfs.Self: no /proc
}

// newProcessCollector reads this process's start time.
func newProcessCollector() *processCollector {
	p, err := procfs.Self()
	if err != nil {
		return &processCollector{err: err}
	}
	c := &processCollector{proc: p}
	if st, err := p.Stat(); err == nil {
		c.start, _ = st.StartTime()
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *processCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProcessCPU, descProcessOpenFDs, descProcessMaxFDs, descProcessVsize,
		descProcessMaxVsize, descProcessRSS, descProcessStart} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *processCollector) Collect(ch chan<- prometheus.Metric) {
	if c.err != nil {
		return
	}
	if st, err := c.proc.Stat(); err == nil {
		ch <- prometheus.MustNewConstMetric(descProcessCPU, prometheus.CounterValue, st.CPUTime())
		ch <- prometheus.MustNewConstMetric(descProcessVsize, prometheus.GaugeValue, float64(st.VirtualMemory()))
		ch <- prometheus.MustNewConstMetric(descProcessRSS, prometheus.GaugeValue, float64(st.ResidentMemory()))
	}
	if c.start > 0 {
		ch <- prometheus.MustNewConstMetric(descProcessStart, prometheus.GaugeValue, c.start)
	}
	if n, err := c.proc.FileDescriptorsLen(); err == nil {
		ch <- prometheus.MustNewConstMetric(descProcessOpenFDs, prometheus.GaugeValue, float64(n))
	}
	if files, space, err := limits(); err == nil {
		ch <- prometheus.MustNewConstMetric(descProcessMaxFDs, prometheus.GaugeValue, float64(files))
		ch <- prometheus.MustNewConstMetric(descProcessMaxVsize, prometheus.GaugeValue, float64(space))
	}
}

// limits are the soft limits on open files and on the address space, as
// /proc/self/limits shows them (unlimited is the largest uint64).
func limits() (files, space uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, fmt.Errorf("getrlimit open files: %w", err)
	}
	files = r.Cur
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &r); err != nil {
		return 0, 0, fmt.Errorf("getrlimit address space: %w", err)
	}
	return files, r.Cur, nil
}
