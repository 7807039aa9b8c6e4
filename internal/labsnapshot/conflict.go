package labsnapshot

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"homelab/internal/lab"
)

// Conflict is a postgres target whose server is a service that another
// target's stop list stops. A lab snapshot stops every stop list's
// services before it backs up (or restores) any target, so the target's
// pg_dump (or pg_restore) cannot connect: the create fails, and so does a
// restore (at its restore point, before it changes anything), where
// `homelab backup run --all` works (each target stops only its own stop
// list, in turn).
type Conflict struct {
	// Target is the postgres target, Address its server's host:port.
	Target, Address string
	// Service is the service whose health probe (postgres or tcp) has
	// that address; StoppedBy the target whose stop list names it.
	Service, StoppedBy string
}

// Warning says the conflict and what to do, in one line.
func (c Conflict) Warning() string {
	return fmt.Sprintf("target %s dumps PostgreSQL at %s, which is service %s, and the stop list of target %s stops %s: a lab snapshot stops every stop list's services before it backs up or restores any target, so %s cannot be reached and the lab snapshot create (or restore) fails; take %s out of the stop list of %s, or back %s up on its own (homelab backup run %s)",
		c.Target, c.Address, c.Service, c.StoppedBy, c.Service, c.Target, c.Service, c.StoppedBy, c.Target, c.Target)
}

// Conflicts returns the conflicts among targets (in their order): each
// postgres target with a host and port whose server is a service (its
// health probe, postgres or tcp, names the same host:port; localhost,
// 127.0.0.1 and ::1 are one host) named in the stop list of another of
// targets.
func Conflicts(l *lab.Lab, targets []string) []Conflict {
	var out []Conflict
	for _, t := range targets {
		b := l.Backups[t]
		if b == nil || b.Provider != lab.ProviderPostgres || b.Source.Host == "" || b.Source.Port == 0 {
			continue
		}
		addr := net.JoinHostPort(b.Source.Host, strconv.Itoa(b.Source.Port))
		for _, other := range targets {
			ob := l.Backups[other]
			if other == t || ob == nil {
				continue
			}
			for _, svc := range ob.Stop {
				if s := l.Services[svc]; s != nil && sameAddress(probeAddress(s), addr) &&
					!slices.ContainsFunc(out, func(c Conflict) bool { return c.Target == t && c.Service == svc }) {
					out = append(out, Conflict{Target: t, Address: addr, Service: svc, StoppedBy: other})
				}
			}
		}
	}
	return out
}

// warnings are the warnings of the Conflicts of targets.
func warnings(l *lab.Lab, targets []string) []string {
	var out []string
	for _, c := range Conflicts(l, targets) {
		out = append(out, c.Warning())
	}
	return out
}

// probeAddress is the host:port of s's postgres or tcp health probe, or
// "" when it has neither.
func probeAddress(s *lab.Service) string {
	switch h := s.Health; {
	case h == nil:
		return ""
	case h.Postgres != nil && h.Postgres.Host != "":
		port := h.Postgres.Port
		if port == 0 {
			port = lab.DefaultPostgresPort
		}
		return net.JoinHostPort(h.Postgres.Host, strconv.Itoa(port))
	case h.TCP != nil:
		return h.TCP.Address
	}
	return ""
}

// sameAddress reports whether a and b are the same host:port, taking the
// loopback names as one host.
func sameAddress(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	loop := func(h string) bool { return h == "localhost" || h == "127.0.0.1" || h == "::1" }
	return ah == bh || loop(ah) && loop(bh)
}
