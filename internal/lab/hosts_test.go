package lab

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestHostsDefaultsAndWatchedPaths(t *testing.T) {
	dir := t.TempDir()
	l, err := Parse(filepath.Join(dir, "lab.yaml"), []byte(`
state_dir: state
repositories:
  local: {url: ./repo, password_env: P}
  s3: {url: "s3:https://s3.example/b", password_env: P}
backups:
  files: {provider: restic, repository: local, source: {paths: [data, ./state]}}
hosts: {filesystems: [srv]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if l.Hosts.WarnDays != DefaultWarnDays || l.Hosts.SampleInterval != DefaultSampleInterval {
		t.Errorf("defaults: %+v", l.Hosts)
	}
	want := fmt.Sprint([]string{filepath.Join(dir, "state"), filepath.Join(dir, "repo"), filepath.Join(dir, "data"), filepath.Join(dir, "srv")})
	if got := fmt.Sprint(l.WatchedPaths()); got != want {
		t.Errorf("watched paths %s, want %s", got, want)
	}
}
