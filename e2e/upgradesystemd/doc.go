// Package upgradesystemd runs `homelab upgrade` end to end for the
// systemd runtime, inside a container with a real systemd as PID 1
// (testenv.Systemd). It has tests only.
package upgradesystemd
