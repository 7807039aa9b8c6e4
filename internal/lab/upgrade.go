package lab

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	"homelab/internal/version"
)

const (
	// DefaultHealthyWithin is how long an upgraded service has to become
	// healthy when its upgrade section does not say.
	DefaultHealthyWithin = 10 * time.Minute
	// DefaultPostStepTimeout bounds a post-step command (migrations).
	DefaultPostStepTimeout = time.Hour
)

// Upgrade is how `homelab upgrade` upgrades a service: the stops on the
// way, the restore points before each, and the health gate after each.
type Upgrade struct {
	// Preset names a built-in list of required stops (version.PresetNames:
	// "gitlab"), merged with RequiredStops.
	Preset string `yaml:"preset"`
	// RequiredStops are versions an upgrade must pass through, written as
	// the service's versions are (image tags: "16.7.10-ce.0").
	RequiredStops []string `yaml:"required_stops"`
	// BackupBefore names the backup targets taken as a restore point
	// before each stop, and restored when the stop is rolled back.
	BackupBefore []string `yaml:"backup_before"`
	// HealthyWithin is how long the service has after each version change
	// to pass its health probe (or, without one, to be running). Default
	// DefaultHealthyWithin.
	HealthyWithin time.Duration `yaml:"healthy_within"`
	// PostStep is a shell command run after each stop is healthy (such as
	// "gitlab-rake gitlab:background_migrations:wait"); a text/template
	// with .Service, .Version and .Previous. Its failure rolls the stop
	// back.
	PostStep string `yaml:"post_step"`
	// PostStepTimeout bounds PostStep. Default DefaultPostStepTimeout.
	PostStepTimeout time.Duration `yaml:"post_step_timeout"`
	// AfterRollback is the state a rolled-back service is left in:
	// AfterRollbackRunning (the default: started on the previous version
	// and health-gated) or AfterRollbackStopped (data restored and the
	// previous version set, but left stopped for an operator to check:
	// the package-upgrade flow).
	AfterRollback string `yaml:"after_rollback"`
}

// Values of Upgrade.AfterRollback.
const (
	AfterRollbackRunning = "running"
	AfterRollbackStopped = "stopped"
)

// Stops are the parsed RequiredStops (valid after Load).
func (u *Upgrade) Stops() []version.Version {
	var out []version.Version
	for _, s := range u.RequiredStops {
		if v, err := version.Parse(s); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// checkVersioning checks that the runtime r at path p can change versions
// (for what: "upgrades", "deploys"): a compose file, or a set_version
// command.
func (d *decoder) checkVersioning(p string, r *Runtime, what string) {
	switch r.Kind() {
	case RuntimeCompose:
		if r.Compose.File == "" {
			d.at(p+".compose.file", "required for %s: the compose file whose image tag is changed", what)
		}
	case RuntimeExec:
		if r.Exec.SetVersion == "" {
			d.at(p+".exec.set_version", "required for %s: a command installing {{.Version}}", what)
		}
	case RuntimeSystemd:
		if r.Systemd.SetVersion == "" {
			d.at(p+".systemd.set_version", "required for %s: a command installing {{.Version}}", what)
		}
	}
}

// validateUpgrade checks a service's upgrade section against the lab: a
// known preset, versions that parse, existing backup targets, a runtime
// that can change versions, and fills in the defaults.
func (d *decoder) validateUpgrade(p string, s *Service, l *Lab) {
	u := s.Upgrade
	if u == nil || d.bad[p] {
		return
	}
	if u.Preset != "" {
		if _, ok := version.LookupPreset(u.Preset); !ok {
			d.at(p+".preset", "unknown preset %q (known: %s)", u.Preset, strings.Join(version.PresetNames(), ", "))
		}
	}
	for i, v := range u.RequiredStops {
		if _, err := version.Parse(v); err != nil {
			d.at(fmt.Sprintf("%s.required_stops[%d]", p, i), "%v", err)
		}
	}
	for i, name := range u.BackupBefore {
		if l.Backups[name] == nil {
			d.at(fmt.Sprintf("%s.backup_before[%d]", p, i), "unknown backup target %q (known: %s)",
				name, strings.Join(slices.Sorted(maps.Keys(l.Backups)), ", "))
		}
	}
	d.nonNegative(p+".healthy_within", u.HealthyWithin)
	d.nonNegative(p+".post_step_timeout", u.PostStepTimeout)
	if u.PostStep != "" {
		if _, err := template.New("post_step").Parse(u.PostStep); err != nil {
			d.at(p+".post_step", "bad template: %v", strings.TrimPrefix(err.Error(), "template: post_step:"))
		}
	}
	rp := strings.TrimSuffix(p, ".upgrade") + ".runtime"
	if s.Deploy != nil && s.Runtime == nil {
		d.at(p, "a blue/green service is not upgraded in place: leave the upgrade section out and use homelab deploy")
	} else if s.Runtime.Kind() == "" {
		d.at(p, "an upgrade needs a runtime to change the version: give the service a runtime (compose, exec or systemd)")
	}
	d.checkVersioning(rp, s.Runtime, "upgrades")
	switch u.AfterRollback {
	case "":
		u.AfterRollback = AfterRollbackRunning
	case AfterRollbackRunning, AfterRollbackStopped:
	default:
		d.at(p+".after_rollback", "must be %s or %s, not %q", AfterRollbackRunning, AfterRollbackStopped, u.AfterRollback)
	}
	u.HealthyWithin = orDefault(u.HealthyWithin, DefaultHealthyWithin)
	u.PostStepTimeout = orDefault(u.PostStepTimeout, DefaultPostStepTimeout)
}
