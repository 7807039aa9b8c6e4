// Package host reads the machine homelab runs on: uptime, load, CPU count
// and memory from /proc, the filesystems that hold given paths (statfs and
// /proc/self/mountinfo), and forecasts when a filesystem fills from
// samples of its free space (a least-squares line).
//
// It is an adapter: it imports no homelab package.
package host
