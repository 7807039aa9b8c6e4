package backup

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"homelab/internal/lab"
)

// HandRestorer is implemented by providers that can say how to restore a
// snapshot by hand, with the plain tools and without homelab (what an
// operator runs when homelab's own rollback failed).
type HandRestorer interface {
	// RestoreCommands returns sh command lines, one per string and in
	// order, that restore snapshot snapshotID of spec back to its source
	// through repo; lines starting with "# " are comments. No secret
	// appears in them.
	RestoreCommands(spec *lab.Backup, repo ShellRestic, snapshotID string) ([]string, error)
}

// ShellRestic is how an sh command line reaches a repository with plain
// restic: environment assignments that carry secrets by reference only,
// and the repository URL.
type ShellRestic struct {
	// Env are the sh assignments put before restic: the password as
	// RESTIC_PASSWORD_FILE='<file>' or RESTIC_PASSWORD="$VAR", the S3
	// keys of a repository on S3 as AWS_ACCESS_KEY_ID="$VAR" or
	// AWS_ACCESS_KEY_ID="$(cat '<file>')" (and AWS_SECRET_ACCESS_KEY,
	// AWS_DEFAULT_REGION='<region>'), then the repository's env
	// (NAME='value') and env_from (NAME="$VAR"), each sorted by name.
	Env []string
	URL string
}

// Command returns `<Env...> restic -r '<URL>' <args>`; args must already
// be quoted for sh (see ShellQuote).
func (r ShellRestic) Command(args string) string {
	parts := append(slices.Clone(r.Env), "restic", "-r", ShellQuote(r.URL), args)
	return strings.Join(parts, " ")
}

// ShellQuote quotes s for sh in single quotes; a single quote of s is
// closed, escaped and reopened:
//
//	ShellQuote("it's") == `'it'\''s'`
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var shellName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ShellVarRef returns the sh assignment name="$from": a variable set from
// another by reference, so that its value is not written out. It fails
// when name or from is not an sh variable name.
func ShellVarRef(name, from string) (string, error) {
	for _, n := range []string{name, from} {
		if !shellName.MatchString(n) {
			return "", fmt.Errorf("%q is not an sh variable name", n)
		}
	}
	return name + `="$` + from + `"`, nil
}

// shellRestic returns the sh form of repository r.
func shellRestic(r *lab.Repository) (ShellRestic, error) {
	sr := ShellRestic{URL: r.URL}
	switch {
	case r.PasswordFile != "":
		sr.Env = append(sr.Env, "RESTIC_PASSWORD_FILE="+ShellQuote(r.PasswordFile))
	case r.PasswordEnv != "":
		ref, err := ShellVarRef("RESTIC_PASSWORD", r.PasswordEnv)
		if err != nil {
			return sr, fmt.Errorf("password_env: %w", err)
		}
		sr.Env = append(sr.Env, ref)
	}
	for _, k := range []struct {
		name string
		s    lab.Secret
	}{{"AWS_ACCESS_KEY_ID", r.AccessKeyID()}, {"AWS_SECRET_ACCESS_KEY", r.SecretAccessKey()}} {
		switch {
		case k.s.Env != "":
			ref, err := ShellVarRef(k.name, k.s.Env)
			if err != nil {
				return sr, fmt.Errorf("%s_env: %w", k.s.Field, err)
			}
			sr.Env = append(sr.Env, ref)
		case k.s.File != "":
			sr.Env = append(sr.Env, k.name+`="$(cat `+ShellQuote(k.s.File)+`)"`)
		}
	}
	if r.Region != "" {
		sr.Env = append(sr.Env, "AWS_DEFAULT_REGION="+ShellQuote(r.Region))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Env)) {
		if !shellName.MatchString(k) {
			return sr, fmt.Errorf("env: %q is not an sh variable name", k)
		}
		sr.Env = append(sr.Env, k+"="+ShellQuote(r.Env[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.EnvFrom)) {
		ref, err := ShellVarRef(k, r.EnvFrom[k])
		if err != nil {
			return sr, fmt.Errorf("env_from: %w", err)
		}
		sr.Env = append(sr.Env, ref)
	}
	return sr, nil
}

var snapshotIDPattern = regexp.MustCompile(`^[0-9a-f]{1,64}$`)

// RestoreCommands returns the sh command lines an operator can paste to
// restore snapshot snapshotID of target name back to its source by hand,
// with plain restic (and pg_restore for postgres) and without homelab: one
// command per string, in order, with comment lines starting with "# "
// among them. The provider writes them (HandRestorer); see
// files.Provider.RestoreCommands and postgres.Provider.RestoreCommands for
// what they do, which is not all that an in-place Restore does.
//
// No secret is written out: the repository password appears as
// RESTIC_PASSWORD_FILE='<file>' or RESTIC_PASSWORD="$VAR", env_from
// entries as NAME="$VAR", a database password as a reference too; values
// are single-quoted for sh. The commands expect the same environment
// variables homelab would read.
//
// snapshotID is a restic snapshot ID or unique prefix (lower-case hex); it
// is not looked up in the repository ("latest" is refused: it would pick
// the newest snapshot of any target of the repository). It fails for an
// unknown target, a provider that is not a HandRestorer, or a variable
// name of the lab file that sh cannot use.
func (m *Manager) RestoreCommands(name, snapshotID string) ([]string, error) {
	spec, err := m.Lab.Backup(name)
	if err != nil {
		return nil, err
	}
	if !snapshotIDPattern.MatchString(snapshotID) {
		return nil, fmt.Errorf("target %s: %q is not a snapshot ID: want the hex ID of a restic snapshot", name, snapshotID)
	}
	hr, ok := m.Providers[spec.Provider].(HandRestorer)
	if !ok {
		return nil, fmt.Errorf("target %s: provider %q cannot write restore commands", name, spec.Provider)
	}
	repo, ok := m.Lab.Repositories[spec.Repository]
	if !ok || repo == nil {
		return nil, fmt.Errorf("target %s: unknown repository %q", name, spec.Repository)
	}
	sr, err := shellRestic(repo)
	if err != nil {
		return nil, fmt.Errorf("target %s: repository %s: %w", name, spec.Repository, err)
	}
	cmds, err := hr.RestoreCommands(spec, sr, snapshotID)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", name, err)
	}
	return cmds, nil
}
