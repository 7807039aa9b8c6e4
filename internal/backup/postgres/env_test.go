package postgres_test

import (
	"path/filepath"
	"testing"

	"homelab/internal/backup"
	"homelab/internal/backup/backuptest"
	"homelab/internal/backup/postgres"
)

// env is a lab on disk with a fresh repository and catalog, for the tests
// of this provider beyond the conformance suite (provider_test.go).
type env = backuptest.Env

// newEnv is backuptest.New in a fresh directory with this provider as
// postgres.
func newEnv(t *testing.T, backupsYAML string) *env {
	t.Helper()
	dir := t.TempDir()
	return backuptest.New(t, dir, map[string]backup.Provider{"postgres": &postgres.Provider{StateDir: filepath.Join(dir, "state")}}, "", backupsYAML)
}
