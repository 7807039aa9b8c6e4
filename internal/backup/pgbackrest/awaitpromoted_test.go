package pgbackrest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"homelab/internal/backup"
	"homelab/internal/lab"
)

// TestAwaitPromotedStaleControl orchestrates AwaitPromoted against a
// stand-in server (the real one is TestRestoreInPlace's): the restored
// pg_control says "in production" (copied from a running server) until
// the server rewrites it when it starts recovery, and a hot standby
// accepts connections during recovery. A state read before pg_isready
// answered is then the copy's, not the server's: AwaitPromoted must not
// return until the state read after a ready answer is "in production".
// The stand-in pg_isready is the server: its first answer finds it in
// archive recovery (state 5 written), its second promoted (6).
func TestAwaitPromotedStaleControl(t *testing.T) {
	data, bin := t.TempDir(), t.TempDir()
	control := make([]byte, 8192)
	control[16] = stateInProduction // the copy's state (little-endian host)
	if err := os.MkdirAll(filepath.Join(data, "global"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "global", "pg_control"), control, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "postmaster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
state=5; test -f ` + bin + `/answered && state=6
touch ` + bin + `/answered
printf "\\00$state" | dd of=` + data + `/global/pg_control bs=1 seek=16 conv=notrunc 2>/dev/null
`
	if err := os.WriteFile(filepath.Join(bin, "pg_isready"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := &lab.Backup{Name: "db", Provider: lab.ProviderPgBackRest, PgBackRest: &lab.PgBackRest{
		Cluster: lab.PgBackRestCluster{DataDir: data, Port: 5432, SocketDir: data, OSUser: "root", User: "postgres", BinDir: bin}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := (&Provider{StateDir: t.TempDir()}).AwaitPromoted(ctx, backup.Target{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if st, err := controlState(data); err != nil || st != stateInProduction {
		t.Fatalf("returned with the server in state %d (%v): still in recovery", st, err)
	}
}
