package lab

import "time"

// DefaultDrillAppWithin is how long a drill's application has to pass its
// probe when drill.app.within is not set.
const DefaultDrillAppWithin = 2 * time.Minute

// DrillApp is a drill's application check (drill.app): after the SQL
// checks, Start runs the application against the drill's throwaway
// PostgreSQL instance, Health must pass within Within, and Stop (then a
// SIGTERM, and SIGKILL, to Start's process group) always ends it:
//
//	drill:
//	  instance: throwaway            # postgres targets; pgbackrest drills always are
//	  app:
//	    start: exec ./app serve --addr 127.0.0.1:18080
//	    stop: ./app shutdown         # optional
//	    health: {http: {url: http://127.0.0.1:18080/health}}
//	    within: 2m
//
// The commands run with /bin/sh -c in Dir. Start may stay in the
// foreground (homelab keeps it running in its own process group) or
// return after starting the application in the background. The instance's
// address and credentials reach the commands (and a command probe) only in
// their environment: HOMELAB_DRILL_PGHOST, HOMELAB_DRILL_PGPORT,
// HOMELAB_DRILL_PGDATABASE, HOMELAB_DRILL_PGUSER and
// HOMELAB_DRILL_PGPASSWORD (a password made for this drill).
//
// Only for pgbackrest targets and postgres targets with instance:
// throwaway: a drill database on the live server has no instance of its
// own to point an application at.
type DrillApp struct {
	Start string `yaml:"start"`
	Stop  string `yaml:"stop"`
	// Health is the application's probe: one of the service probe kinds
	// (http, tcp, postgres, command, container), retried until it passes.
	Health *Health `yaml:"health"`
	// Within bounds the wait for Health from the start. Default
	// DefaultDrillAppWithin.
	Within time.Duration `yaml:"within"`
	// Dir is the commands' working directory; default the lab file's
	// directory.
	Dir string `yaml:"dir"`
}

// validateDrillApp checks drill.app of b (at p, the target's path) and
// fills its defaults.
func (d *decoder) validateDrillApp(p string, b *Backup) {
	a := b.Drill.App
	if a == nil {
		return
	}
	p += ".drill.app"
	switch {
	case b.Provider == ProviderPgBackRest:
	case b.Provider == ProviderPostgres && b.Drill.Instance == DrillThrowaway:
	case b.Provider == ProviderPostgres:
		d.at(p, "needs drill.instance: throwaway (the application runs against the drill's own cluster, not the live server)")
	default:
		d.at(p, "for providers pgbackrest and postgres only (a %s drill has no database to start an application on)", b.Provider)
	}
	if a.Start == "" {
		d.at(p+".start", "required: a shell command that starts the application")
	}
	if a.Health == nil {
		d.at(p+".health", "required: the application's probe (%s)", "http, tcp, postgres, command or container")
	} else {
		d.validateHealth(p+".health", &Service{Health: a.Health})
		a.Health.setDefaults(d.labDir())
	}
	d.nonNegative(p+".within", a.Within)
	if a.Within == 0 {
		a.Within = DefaultDrillAppWithin
	}
	a.Dir = absPath(d.labDir(), a.Dir)
}
