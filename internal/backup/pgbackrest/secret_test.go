package pgbackrest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"homelab/internal/testenv"
)

// TestCipherPassNeverInArgv: an encrypted repository (cipher_pass_env)
// backs up, lists and drills; a shim in front of pgbackrest records every
// argv homelab starts, and neither it, nor pgbackrest.conf, nor any error
// holds the passphrase. archive_command reads it from conf.d/cipher.conf,
// 0600.
func TestCipherPassNeverInArgv(t *testing.T) {
	const pass = "cipher-pass-never-in-argv-7731"
	t.Setenv("TEST_PGBR_CIPHER", pass)
	shims := testenv.SearchableDir(t)
	// Written by homelab's pgbackrest commands (run as the cluster's OS
	// user) and by the server's archive-push and archive-get.
	argv := filepath.Join(testenv.SearchableDir(t), "argv.log")
	if err := os.WriteFile(argv, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(argv, 0o666); err != nil {
		t.Fatal(err)
	}
	real := testenv.PgBackRest(t)
	shim := "#!/bin/sh\nprintf '%s\\n' \"pgbackrest $*\" >> " + argv + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(shims, "pgbackrest"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", shims+":"+os.Getenv("PATH"))

	e := newEnv(t, "", false)
	e.t.Spec.PgBackRest.CipherPassEnv = "TEST_PGBR_CIPHER"
	ctx := context.Background()
	if err := e.p.Setup(ctx, e.t); err != nil {
		t.Fatal(err)
	}
	snap := e.backup(t, TypeFull)
	rep, err := e.p.Drill(ctx, e.t, snap, "20261206T000000Z-cipher")
	if err != nil || len(rep.Failed()) > 0 {
		t.Fatalf("drill: %v %s", err, rep.Output())
	}
	// A wrong passphrase fails without showing either.
	t.Setenv("TEST_PGBR_CIPHER", "wrong-pass-4411")
	_, err = e.p.List(ctx, e.t)
	if err == nil || strings.Contains(err.Error(), "wrong-pass-4411") || strings.Contains(err.Error(), pass) {
		t.Errorf("list with a wrong passphrase: %v", err)
	}

	log, err := os.ReadFile(argv)
	if err != nil || !strings.Contains(string(log), " backup") || !strings.Contains(string(log), " restore") {
		t.Fatalf("argv log %q: %v", log, err)
	}
	conf, err := os.ReadFile(ConfigPath(e.state, "db"))
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"argv": string(log), "pgbackrest.conf": string(conf)} {
		if strings.Contains(text, pass) || strings.Contains(text, "wrong-pass-4411") {
			t.Errorf("%s holds the passphrase:\n%s", what, text)
		}
	}
	cipher := filepath.Join(Dir(e.state, "db"), "conf.d", "cipher.conf")
	if fi, err := os.Stat(cipher); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cipher.conf: %v %v", fi, err)
	}
	if fi, err := os.Stat(ConfigPath(e.state, "db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pgbackrest.conf: %v %v", fi, err)
	}
}
