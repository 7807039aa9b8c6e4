package postgres_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/backup/backuptest"
)

func TestRestoreCommandsPostgres(t *testing.T) {
	pg := shopCluster(t)
	want := fingerprint(t, pg, "shop")
	e := pgEnv(t, pg, "shop", pg.Password, "")
	id := e.MustBackup(t, "db").Run.SnapshotID
	repo := e.Lab.Repositories["local"]
	repoPassword, err := os.ReadFile(repo.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	damage := func() {
		pg.PSQL(t, "shop", "update books set title = 'changed' where id % 3 = 0; delete from books where id % 7 = 0; insert into authors(name) values ('added since')")
		if fingerprint(t, pg, "shop") == want {
			t.Fatal("damage changed nothing")
		}
	}
	noSecret := func(cmds []string) {
		t.Helper()
		for _, c := range cmds {
			if strings.Contains(c, pg.Password) || strings.Contains(c, strings.TrimSpace(string(repoPassword))) {
				t.Fatalf("a password in a command: %s", c)
			}
		}
	}

	// password_env: PGPASSWORD="$VAR".
	cmds, err := e.M.RestoreCommands("db", id)
	if err != nil {
		t.Fatal(err)
	}
	q := backup.ShellQuote
	conn := fmt.Sprintf("--host '%s' --port '%d' --username '%s' --no-password", pg.Host, pg.Port, pg.User)
	wantCmds := []string{
		fmt.Sprintf("# restore snapshot %s of target db into database shop, over what is there now:", id),
		"# objects of the dump are dropped and recreated, objects created since are kept; all or nothing (one transaction)",
		`# the database must exist; if it does not, create it first with: PGPASSWORD="$HOMELAB_TEST_PGPASSWORD" createdb ` + conn + " 'shop'",
		fmt.Sprintf(`RESTIC_PASSWORD_FILE=%s restic -r %s dump %s '/shop.dump' | PGPASSWORD="$HOMELAB_TEST_PGPASSWORD" pg_restore --clean --if-exists --single-transaction --exit-on-error %s --dbname 'shop'`, q(repo.PasswordFile), q(repo.URL), q(id), conn),
	}
	if strings.Join(cmds, "\n") != strings.Join(wantCmds, "\n") {
		t.Fatalf("commands:\n%s\nwant:\n%s", strings.Join(cmds, "\n"), strings.Join(wantCmds, "\n"))
	}
	noSecret(cmds)
	damage()
	backuptest.RunCommands(t, cmds, "HOMELAB_TEST_PGPASSWORD="+pg.Password)
	if got := fingerprint(t, pg, "shop"); got != want {
		t.Fatalf("database after the commands:\n got %s\nwant %s", got, want)
	}

	// password_file: the file is read by the command, not written out.
	pwFile := filepath.Join(t.TempDir(), "pg.pass")
	if err := os.WriteFile(pwFile, []byte(pg.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := &e.Lab.Backups["db"].Source
	src.PasswordEnv, src.PasswordFile, src.SSLMode = "", pwFile, "disable"
	cmds, err = e.M.RestoreCommands("db", id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmds[3], fmt.Sprintf(`| PGPASSWORD="$(cat %s)" PGSSLMODE='disable' pg_restore `, q(pwFile))) {
		t.Errorf("command = %s", cmds[3])
	}
	noSecret(cmds)
	damage()
	backuptest.RunCommands(t, cmds)
	if got := fingerprint(t, pg, "shop"); got != want {
		t.Fatalf("database after the commands (password_file):\n got %s\nwant %s", got, want)
	}
}
