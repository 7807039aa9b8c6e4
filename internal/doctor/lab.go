package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"homelab/internal/backup"
	"homelab/internal/backup/pgbackrest"
	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/lab"
	"homelab/internal/saga"
	"homelab/internal/status"
)

// checkCatalog finds, in the catalog, the unfinished sagas no process
// works on (saga.Unfinished, saga.InProgress) and the targets whose
// newest passed drill is older than their drill schedule allows.
func (d *Doctor) checkCatalog(ctx context.Context) part {
	p := part{checked: "catalog"}
	if j, ok := d.Catalog.(catalog.Journal); ok {
		recs, err := saga.Unfinished(ctx, j)
		if err != nil {
			p.findings = append(p.findings, unchecked("catalog", err))
		}
		for _, r := range recs {
			if busy, _ := saga.InProgress(d.Lab.StateDir, r); busy {
				continue
			}
			p.findings = append(p.findings, Finding{Check: CheckUnfinished, Subject: "saga " + r.ID,
				Problem: saga.Describe(r) + ": no process works on it",
				Fix:     "homelab " + r.Kind + " --resume " + r.ID})
		}
	}
	sums, err := catalog.Summaries(ctx, d.Catalog)
	if err != nil {
		p.findings = append(p.findings, unchecked("catalog", err))
		return p
	}
	now := d.now()
	for _, name := range d.Lab.BackupNames() {
		b := d.Lab.Backups[name]
		if b.Drill.Schedule == "" {
			continue
		}
		f := Finding{Check: CheckDrill, Subject: "target " + name, Fix: "homelab backup verify " + name}
		last := sums[name].LastGoodDrill
		if last == nil {
			f.Problem = "no restore drill has passed yet (drill schedule " + b.Drill.Schedule + ")"
			p.findings = append(p.findings, f)
			continue
		}
		end := last.End
		if end.IsZero() {
			end = last.Start
		}
		due, ok, err := status.DueAfter(b.Drill.Schedule, end.In(now.Location()))
		if err != nil {
			p.findings = append(p.findings, unchecked("target "+name, fmt.Errorf("drill schedule: %w", err)))
			continue
		}
		if ok && due.Before(now) {
			f.Problem = fmt.Sprintf("the last passed restore drill ended %s, its schedule (%s) wanted another by %s",
				end.UTC().Format("2006-01-02 15:04 UTC"), b.Drill.Schedule, due.UTC().Format("2006-01-02 15:04 UTC"))
			p.findings = append(p.findings, f)
		}
	}
	return p
}

// checkCerts judges the lab's CA and leaves (certs.Status): each with an
// issue (missing, expired, inside its rotation window, a key or bundle
// that does not match) is a finding naming the command that fixes it.
func (d *Doctor) checkCerts(context.Context) part {
	r, err := certs.Status(d.Lab, d.now())
	if err != nil {
		return part{checked: "certificates", findings: []Finding{unchecked("certificates", err)}}
	}
	if !r.Configured {
		return part{}
	}
	p := part{checked: "certificates"}
	for _, c := range append([]certs.Cert{r.CA}, r.Leaves...) {
		if c.OK() {
			continue
		}
		f := Finding{Check: CheckCertificate, Subject: "certificate " + c.Name, Problem: joinIssues(c.Issues)}
		switch {
		case c.Kind == certs.KindCA && !c.Exists:
			f.Fix = "homelab cert init"
		case c.Kind == certs.KindCA:
			f.Fix = "homelab cert rotate-ca --confirm-i-know-this-is-disruptive"
		case !c.Exists:
			f.Fix = "homelab cert issue " + c.Name
		default:
			f.Fix = "homelab cert rotate " + c.Name
		}
		p.findings = append(p.findings, f)
	}
	return p
}

// checkLeftState finds the pgBackRest configurations homelab wrote for
// targets that are no longer pgbackrest targets of the lab
// (pgbackrest.Dir: state_dir/pgbackrest/<target>): each holds, when its
// repository had secrets, conf.d/secrets.conf with the cipher passphrase
// and S3 keys in the clear (0600), which nothing removes with the target.
// It is left to the operator: a cluster whose archive_command still names
// that configuration goes on archiving through it, and removing it would
// stop that.
func (d *Doctor) checkLeftState(context.Context) part {
	root := filepath.Join(d.Lab.StateDir, "pgbackrest")
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return part{}
	}
	p := part{checked: "pgbackrest configurations"}
	if err != nil {
		p.findings = append(p.findings, unchecked("pgbackrest configurations", err))
		return p
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		if b, ok := d.Lab.Backups[name]; ok && b.Provider == lab.ProviderPgBackRest {
			continue
		}
		dir := pgbackrest.Dir(d.Lab.StateDir, name)
		f := Finding{Check: CheckLeftState, Subject: "target " + name,
			Problem: fmt.Sprintf("is no longer a pgbackrest target of the lab, but its pgBackRest configuration is still in %s", dir),
			Fix:     fmt.Sprintf("once no cluster's archive_command names %s: rm -r %s", pgbackrest.ConfigPath(d.Lab.StateDir, name), shellArg(dir))}
		if _, err := os.Stat(filepath.Join(dir, "conf.d", "secrets.conf")); err == nil {
			f.Problem += ", with its repository's secrets (conf.d/secrets.conf)"
		}
		p.findings = append(p.findings, f)
	}
	return p
}

// plainArg matches the arguments sh takes as they are.
var plainArg = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellArg is s as one sh argument of a command a finding's Fix shows:
// as it is when sh would take it so, else quoted (backup.ShellQuote), so
// that a state_dir with a space in it is not cut into two paths for rm.
func shellArg(s string) string {
	if plainArg.MatchString(s) {
		return s
	}
	return backup.ShellQuote(s)
}

func joinIssues(issues []string) string {
	if len(issues) == 0 {
		return "needs attention"
	}
	return list(issues, len(issues))
}
