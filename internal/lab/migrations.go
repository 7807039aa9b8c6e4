package lab

import (
	"regexp"
	"strings"
	"time"
)

// DefaultMigrationsTimeout bounds a service's migrations status command
// when its migrations section does not say.
const DefaultMigrationsTimeout = time.Minute

// Migrations says how to ask a service whether its application's
// database migrations are all applied (`homelab doctor`):
//
//	migrations:
//	  status: "docker compose exec -T app ./app migrate --status"
//	  pending_exit: 1              # exit status meaning "some are pending" (default 1)
//	  # or, for a tool that lists them and exits 0:
//	  pending_match: '^\s*down\s'  # each stdout line matching is a pending migration
//
// Status runs with /bin/sh -c in the lab file's directory, with
// HOMELAB_SERVICE set. Without PendingMatch: exit 0 is "none pending",
// exit PendingExit is "some pending" (stdout's lines name them), any
// other exit is a failed check. With PendingMatch: the command must exit
// 0, and each line of its stdout that matches is one pending migration
// (rails db:migrate:status: '^\s*down\s'; goose status: 'Pending';
// django showmigrations: '^\s*\[ \]').
//
// Not to be confused with deploy.migrations, the directory of SQL files
// that `homelab migrations check` classifies for blue/green deploys.
type Migrations struct {
	Status       string `yaml:"status"`
	PendingExit  int    `yaml:"pending_exit"`
	PendingMatch string `yaml:"pending_match"`
	// Timeout bounds Status. Default DefaultMigrationsTimeout.
	Timeout time.Duration `yaml:"timeout"`

	match *regexp.Regexp
}

// Match is the compiled PendingMatch; nil when it is not set.
func (m *Migrations) Match() *regexp.Regexp { return m.match }

// validateMigrations checks a service's migrations section and fills in
// its defaults.
func (d *decoder) validateMigrations(p string, s *Service) {
	m := s.Migrations
	if m == nil || d.bad[p] {
		return
	}
	if strings.TrimSpace(m.Status) == "" {
		d.at(p+".status", "required: a shell command that says whether migrations are pending")
	}
	d.nonNegative(p+".timeout", m.Timeout)
	switch {
	case m.PendingMatch != "" && m.PendingExit != 0:
		d.at(p+".pending_exit", "not with pending_match: the command then exits 0 and its matching lines are the pending migrations")
	case m.PendingExit < 0 || m.PendingExit > 255:
		d.at(p+".pending_exit", "bad exit status %d: expected 1 to 255", m.PendingExit)
	}
	if m.PendingMatch != "" {
		re, err := regexp.Compile(m.PendingMatch)
		if err != nil {
			d.at(p+".pending_match", "bad regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		m.match = re
	} else if m.PendingExit == 0 {
		m.PendingExit = 1
	}
	m.Timeout = orDefault(m.Timeout, DefaultMigrationsTimeout)
}
