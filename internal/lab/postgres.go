package lab

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

// Values of PostgresServer.Mode: how pg_upgrade moves the data files
// (pg_upgrade --clone, --copy, --link).
const (
	// PGModeAuto is --clone where the file system can clone files
	// (reflinks: btrfs, XFS), else --copy. The default.
	PGModeAuto  = "auto"
	PGModeClone = "clone"
	PGModeCopy  = "copy"
	// PGModeLink hard-links the data files: fast and small, but the old
	// cluster cannot be started once the new one has been, so a rollback
	// is a restore from the restore point.
	PGModeLink = "link"
)

// DefaultPGUpgradePort is the port pg_upgrade's own servers listen on
// (pg_upgrade's default, 50432) when postgres.upgrade_port is not set.
const DefaultPGUpgradePort = 50432

// PostgresServer marks a service as a PostgreSQL server whose major
// version `homelab upgrade <service> --to MAJOR` changes with pg_upgrade
// (exec and systemd runtimes; a compose service with an image per major
// is not supported). The service's runtime starts the cluster of the
// major its set_version command selects (and its version command
// prints), from DataDir of that major with the binaries of BinDirs.
type PostgresServer struct {
	// DataDir is the cluster's data directory, a text/template with
	// .Major ("/srv/pg/{{.Major}}/main"): each major's cluster has its
	// own. Relative to the lab file's directory.
	DataDir string `yaml:"data_dir"`
	// BinDirs are the directories holding each major's initdb, pg_ctl,
	// postgres, psql, pg_controldata, pg_dumpall, pg_upgrade and vacuumdb, by major
	// ("15": /usr/lib/postgresql/15/bin). Relative to the lab file's
	// directory.
	BinDirs map[string]string `yaml:"bin_dirs"`
	// Dependents are the services of the lab that use the cluster: an
	// upgrade stops them before it stops PostgreSQL (in link mode before
	// it takes the restore point, which a rollback then restores) and
	// starts them (and health-gates them) after the new major runs.
	Dependents []string `yaml:"dependents"`
	// Mode is how pg_upgrade moves the data files: PGModeAuto (default),
	// PGModeClone, PGModeCopy or PGModeLink.
	Mode string `yaml:"mode"`
	// User is the cluster's bootstrap superuser, whom pg_upgrade, psql
	// and vacuumdb connect as over the local socket (which must allow
	// it: peer or trust). Default "postgres".
	User string `yaml:"user"`
	// UpgradePort is the port of the servers pg_upgrade starts (old and
	// new, one after the other). Default DefaultPGUpgradePort.
	UpgradePort int `yaml:"upgrade_port"`
	// RunAs is the OS user homelab runs the bin dirs' tools as when it
	// runs as root (PostgreSQL's tools refuse root): default the owner of
	// the running major's data directory; "root" runs them as root, for
	// bin dirs whose tools switch user themselves (the chroot wrappers of
	// scripts/build-pg-majors-root.sh).
	RunAs string `yaml:"run_as"`
}

// DataDirOf is the data directory of major's cluster (DataDir expanded),
// absolute after Load.
func (p *PostgresServer) DataDirOf(major string) (string, error) {
	t, err := template.New("data_dir").Option("missingkey=error").Parse(p.DataDir)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, struct{ Major string }{major}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Majors are the majors of BinDirs, oldest first.
func (p *PostgresServer) Majors() []string {
	return slices.SortedFunc(maps.Keys(p.BinDirs), func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
}

// validatePostgres checks a service's postgres section against the lab: a
// data_dir template with {{.Major}}, at least two majors with absolute or
// lab-relative bin dirs, known dependents, a mode, a runtime that can
// tell and change the major (exec or systemd with version and
// set_version) and an upgrade section with a restore point; and fills in
// the defaults, making the paths absolute.
func (d *decoder) validatePostgres(p string, s *Service, l *Lab) {
	pg := s.Postgres
	if pg == nil || d.bad[p] {
		return
	}
	dir := d.labDir()
	self := strings.TrimSuffix(strings.TrimPrefix(p, "services."), ".postgres")
	switch {
	case pg.DataDir == "":
		d.at(p+".data_dir", "required: the data directory of each major, such as /srv/pg/{{.Major}}/main")
	case !strings.Contains(pg.DataDir, ".Major"):
		d.at(p+".data_dir", "must contain {{.Major}}: each major's cluster has its own data directory")
	default:
		if _, err := pg.DataDirOf("15"); err != nil {
			d.at(p+".data_dir", "bad template: %v", strings.TrimPrefix(err.Error(), "template: data_dir:"))
		} else {
			pg.DataDir = absIn(dir, pg.DataDir)
		}
	}
	if len(pg.BinDirs) < 2 {
		d.at(p+".bin_dirs", "required: the bin directory of the running major and of each major to upgrade to, such as {\"15\": /usr/lib/postgresql/15/bin, \"17\": /usr/lib/postgresql/17/bin}")
	}
	for _, m := range slices.Sorted(maps.Keys(pg.BinDirs)) {
		if n, err := strconv.Atoi(m); err != nil || n < 10 || strconv.Itoa(n) != m {
			d.at(p+".bin_dirs."+m, "key %q is not a PostgreSQL major version (10 or later, such as 17)", m)
			continue
		}
		if pg.BinDirs[m] == "" {
			d.at(p+".bin_dirs."+m, "required: the directory holding pg_ctl and postgres of PostgreSQL %s", m)
			continue
		}
		pg.BinDirs[m] = absIn(dir, pg.BinDirs[m])
	}
	for i, name := range pg.Dependents {
		switch {
		case name == self:
			d.at(fmt.Sprintf("%s.dependents[%d]", p, i), "a service cannot depend on itself")
		case l.Services[name] == nil:
			d.at(fmt.Sprintf("%s.dependents[%d]", p, i), "unknown service %q (known: %s)", name, strings.Join(slices.Sorted(maps.Keys(l.Services)), ", "))
		case l.Services[name].Runtime.Kind() == "":
			d.at(fmt.Sprintf("%s.dependents[%d]", p, i), "service %s has no runtime: an upgrade could not stop it", name)
		}
	}
	switch pg.Mode {
	case "":
		pg.Mode = PGModeAuto
	case PGModeAuto, PGModeClone, PGModeCopy, PGModeLink:
	default:
		d.at(p+".mode", "must be %s, %s, %s or %s, not %q", PGModeAuto, PGModeClone, PGModeCopy, PGModeLink, pg.Mode)
	}
	if pg.User == "" {
		pg.User = "postgres"
	}
	switch {
	case pg.UpgradePort == 0:
		pg.UpgradePort = DefaultPGUpgradePort
	case pg.UpgradePort < 1 || pg.UpgradePort > 65535:
		d.at(p+".upgrade_port", "must be a TCP port (1 to 65535), got %d", pg.UpgradePort)
	}
	switch s.Runtime.Kind() {
	case RuntimeExec, RuntimeSystemd:
	case RuntimeCompose:
		d.at(p, "a compose PostgreSQL server is not upgraded by major yet: use an exec or systemd runtime")
	default:
		d.at(p, "a PostgreSQL server needs a runtime (exec or systemd) that starts the cluster of the major set_version selects")
	}
	if s.Upgrade == nil {
		d.at(p, "a PostgreSQL server needs an upgrade section with backup_before: the restore point of its clusters")
	} else if len(s.Upgrade.BackupBefore) == 0 {
		d.at(strings.TrimSuffix(p, ".postgres")+".upgrade.backup_before", "required for a PostgreSQL server: a major upgrade takes a restore point first (fail closed)")
	}
}
