package files_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/backup/backuptest"
	"homelab/internal/lab"
)

func TestRestoreCommandsFiles(t *testing.T) {
	src := t.TempDir()
	app, conf := inPlaceFixture(t, src)
	e := newEnv(t, fmt.Sprintf(`  files:
    provider: restic
    repository: local
    source: {paths: [%s, %s], exclude: ["*.log"]}
`, app, conf))
	id := e.MustBackup(t, "files").Run.SnapshotID
	repo := e.Lab.Repositories["local"]
	password, err := os.ReadFile(repo.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}

	cmds, err := e.M.RestoreCommands("files", id)
	if err != nil {
		t.Fatal(err)
	}
	q := backup.ShellQuote
	want := []string{
		fmt.Sprintf("# restore snapshot %s of target files to where it was backed up from: %s, %s", id, app, conf),
		"# this overwrites files in place; files added since the snapshot are kept (restic 0.14 has no restore --delete), and files excluded from the backup are left as they are",
		fmt.Sprintf("RESTIC_PASSWORD_FILE=%s restic -r %s restore %s --target / --include %s --verify", q(repo.PasswordFile), q(repo.URL), q(id), q(app)),
		fmt.Sprintf("RESTIC_PASSWORD_FILE=%s restic -r %s restore %s --target / --include %s --verify", q(repo.PasswordFile), q(repo.URL), q(id), q(conf)),
	}
	if strings.Join(cmds, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands:\n%s\nwant:\n%s", strings.Join(cmds, "\n"), strings.Join(want, "\n"))
	}

	wantApp := state(t, app)
	mutate(t, app, conf)
	backuptest.RunCommands(t, cmds)
	got := state(t, app)
	// The hand commands overwrite in place: what the snapshot has is back,
	// what was added since is still there.
	for _, line := range strings.Split(wantApp, "\n") {
		if strings.HasPrefix(line, "noise.log ") {
			continue
		}
		if !strings.Contains("\n"+got+"\n", "\n"+line+"\n") {
			t.Errorf("not restored by the commands: %s", line)
		}
	}
	if !strings.Contains(got, "data/new.txt") {
		t.Error("the commands removed a file added since the snapshot; the comment says they keep it")
	}
	if b, err := os.ReadFile(conf); err != nil || string(b) != "port = 80\n" {
		t.Errorf("%s after the commands: %q, %v", conf, b, err)
	}

	// A repository with its password in an environment variable, env and
	// env_from: all by reference or plain, and the commands still work.
	repo.PasswordFile, repo.PasswordEnv = "", "HOMELAB_TEST_RESTIC_PW"
	repo.Env = map[string]string{"TZ": "it's UTC"}
	repo.EnvFrom = map[string]string{"AWS_SECRET_ACCESS_KEY": "HOMELAB_TEST_S3_SECRET"}
	cmds, err = e.M.RestoreCommands("files", id[:8])
	if err != nil {
		t.Fatal(err)
	}
	prefix := `RESTIC_PASSWORD="$HOMELAB_TEST_RESTIC_PW" TZ='it'\''s UTC' AWS_SECRET_ACCESS_KEY="$HOMELAB_TEST_S3_SECRET" restic -r `
	if !strings.HasPrefix(cmds[2], prefix) {
		t.Errorf("command = %s\nwant prefix %s", cmds[2], prefix)
	}
	secret := strings.TrimSpace(string(password))
	for _, c := range cmds {
		if strings.Contains(c, secret) || strings.Contains(c, "s3-secret-value") {
			t.Fatalf("a secret in a command: %s", c)
		}
	}
	mutate(t, app, conf)
	backuptest.RunCommands(t, cmds, "HOMELAB_TEST_RESTIC_PW="+secret, "HOMELAB_TEST_S3_SECRET=s3-secret-value")
	if b, err := os.ReadFile(filepath.Join(app, "data/a.txt")); err != nil || string(b) != "alpha\n" {
		t.Errorf("a.txt after the commands: %q, %v", b, err)
	}

	for _, tc := range []struct{ target, id, want string }{
		{"files", "latest", "not a snapshot ID"},
		{"files", "", "not a snapshot ID"},
		{"files", "abc; rm -rf /", "not a snapshot ID"},
		{"nope", id, "nope"},
	} {
		if _, err := e.M.RestoreCommands(tc.target, tc.id); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RestoreCommands(%q, %q) = %v, want an error containing %q", tc.target, tc.id, err, tc.want)
		}
	}
	// A repository on S3: its keys by reference too (the variable, or the
	// file read by sh), its region plain.
	repo.PasswordFile, repo.PasswordEnv, repo.Env, repo.EnvFrom = "/etc/homelab/restic.pass", "", nil, nil
	repo.S3Credentials = lab.S3Credentials{AccessKeyIDEnv: "HOMELAB_TEST_S3_ID", SecretAccessKeyFile: "/etc/homelab/it's.secret", Region: "eu-west-1"}
	cmds, err = e.M.RestoreCommands("files", id)
	if err != nil {
		t.Fatal(err)
	}
	prefix = `RESTIC_PASSWORD_FILE='/etc/homelab/restic.pass' AWS_ACCESS_KEY_ID="$HOMELAB_TEST_S3_ID" AWS_SECRET_ACCESS_KEY="$(cat '/etc/homelab/it'\''s.secret')" AWS_DEFAULT_REGION='eu-west-1' restic -r `
	if !strings.HasPrefix(cmds[2], prefix) {
		t.Errorf("command = %s\nwant prefix %s", cmds[2], prefix)
	}
	repo.S3Credentials = lab.S3Credentials{}

	repo.EnvFrom = map[string]string{"AWS_SECRET_ACCESS_KEY": "$(reboot)"}
	if _, err := e.M.RestoreCommands("files", id); err == nil || !strings.Contains(err.Error(), "not an sh variable name") {
		t.Errorf("env_from with a bad name: %v", err)
	}
}
