package lab

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"homelab/internal/notify"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.bad.yaml.err golden files")

func TestGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if _, err := Load(file); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file)
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load: got %v, want *Errors", err)
			}
			got := err.Error() + "\n"
			golden := file + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			if !slices.IsSortedFunc(errs.List, func(a, b FieldError) int { return a.Line - b.Line }) {
				t.Errorf("errors not sorted by line:\n%s", got)
			}
		})
	}
}

func TestFull(t *testing.T) {
	l, err := Load("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("Path", l.Path, filepath.Join(dir, "full.good.yaml"))
	check("Name", l.Name, "devlab")
	check("StateDir", l.StateDir, filepath.Join(dir, "state"))
	check("BackupNames", l.BackupNames(), []string{"gitlab-config", "gitlab-db"})

	local := l.Repositories["local"]
	check("local", *local, Repository{
		Name:         "local",
		URL:          filepath.Join(dir, "backups/restic"),
		PasswordFile: filepath.Join(dir, "secrets/restic.pass"),
		Check:        RepoCheck{Schedule: "0 4 * * 0", ReadDataSubset: "5%", Timeout: DefaultCheckTimeout, Jitter: 10 * time.Minute},
	})
	check("offsite.Check.Timeout", l.Repositories["offsite"].Check.Timeout, DefaultCheckTimeout)
	offsite := l.Repositories["offsite"]
	check("offsite.Name", offsite.Name, "offsite")
	check("offsite.URL", offsite.URL, "s3:s3.amazonaws.com/devlab-backups")
	check("offsite.EnvFrom", offsite.EnvFrom["AWS_SECRET_ACCESS_KEY"], "DEVLAB_S3_SECRET")

	check("Services", len(l.Services), 8)
	gitlab := l.Services["gitlab"]
	check("gitlab.Name", gitlab.Name, "gitlab")
	check("gitlab.RuntimeKind", gitlab.RuntimeKind(), "compose")
	check("gitlab.Runtime", *gitlab.Runtime.Compose, ComposeRuntime{Project: "devlab", Service: "gitlab", File: filepath.Join(dir, "compose.yaml"), Timeout: DefaultRuntimeTimeout})
	check("gitlab.Upgrade", *gitlab.Upgrade, Upgrade{Preset: "gitlab", RequiredStops: []string{"16.3.9-ce.0", "16.7.10-ce.0", "16.11.10-ce.0"},
		BackupBefore: []string{"gitlab-db", "gitlab-config"}, HealthyWithin: 15 * time.Minute,
		PostStep: "docker exec devlab-gitlab-1 gitlab-rake gitlab:background_migrations:wait", PostStepTimeout: DefaultPostStepTimeout, AfterRollback: AfterRollbackRunning})
	check("cache.Runtime", *l.Services["cache"].Runtime.Systemd, SystemdRuntime{Unit: "redis.service", Timeout: DefaultRuntimeTimeout, Dir: dir})
	check("app-db.Runtime", *l.Services["app-db"].Runtime.Exec, ExecRuntime{Start: "./bin/app-db start", Stop: "./bin/app-db stop",
		PIDFile: filepath.Join(dir, "run/app-db.pid"), Dir: dir, Timeout: DefaultRuntimeTimeout,
		Env: map[string]string{"APP_DB_MODE": "replica"}, EnvFrom: map[string]string{"APP_DB_PASSWORD": "DEVLAB_APP_DB_PASSWORD"},
		VersionCommands: VersionCommands{Version: "./bin/app-db --version", SetVersion: "apt-get install -y app-db={{.Version}}"}})
	check("app-db.EnvFromSecrets", l.Services["app-db"].Runtime.Exec.EnvFromSecrets(),
		map[string]Secret{"APP_DB_PASSWORD": {Field: "env_from.APP_DB_PASSWORD", Env: "DEVLAB_APP_DB_PASSWORD"}})
	check("app-db.Logs", *l.Services["app-db"].Logs, Logs{File: filepath.Join(dir, "log/app-db.log")})
	check("gitlab.Health", *gitlab.Health, Health{HTTP: &HTTPProbe{
		URL: "https://gitlab.lab/-/readiness", Expect: 200, Timeout: 5 * time.Second}})
	check("gitlab.Health.Kind", gitlab.Health.Kind(), ProbeHTTP)
	check("postgres.Health", *l.Services["postgres"].Health.Postgres, PostgresProbe{
		DSNEnv: "PG_DSN", Query: DefaultProbeQuery, Timeout: DefaultProbeTimeout})
	check("registry.Health", *l.Services["registry"].Health.HTTP, HTTPProbe{
		URL: "https://registry.lab/v2/", Body: "{}", CAFile: filepath.Join(dir, "pki/ca.pem"), Timeout: 10 * time.Second})
	check("app-db.Health", *l.Services["app-db"].Health.Postgres, PostgresProbe{
		Host: "127.0.0.1", Port: DefaultPostgresPort, Database: "app", User: "app",
		PasswordFile: filepath.Join(dir, "secrets/pg.pass"), Query: "select count(*) > 0 from users", Timeout: DefaultProbeTimeout})
	check("cache.Health", *l.Services["cache"].Health, Health{TCP: &TCPProbe{Address: "127.0.0.1:6379", Timeout: 2 * time.Second}})
	check("worker.Health", *l.Services["worker"].Health, Health{Command: &CommandProbe{
		Run: "test -f /run/worker.ok", Dir: dir, Timeout: DefaultProbeTimeout}})
	check("app.Health", *l.Services["app"].Health, Health{Container: &ContainerProbe{Name: "devlab-app-1", Timeout: 3 * time.Second}})
	check("app.Health.Timeout", l.Services["app"].Health.Timeout(), 3*time.Second)
	check("docs.Health", l.Services["docs"].Health, (*Health)(nil))
	check("docs.Health.Kind", l.Services["docs"].Health.Kind(), "")

	db, err := l.Backup("gitlab-db")
	if err != nil {
		t.Fatal(err)
	}
	check("db.Name", db.Name, "gitlab-db")
	check("db.Source", db.Source, Source{
		Host: "db.lab", Port: 5432, Database: "gitlab", User: "gitlab",
		PasswordEnv: "PGPASSWORD_GITLAB", SSLMode: "require",
	})
	check("db.Retention", db.Retention, Retention{KeepLast: 3, KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 6})
	check("db.Drill.Timeout", db.Drill.Timeout, 30*time.Minute)
	check("db.Drill.Checks", len(db.Drill.Checks), 2)
	check("db.Hooks.Timeout", db.Hooks.Timeout, DefaultHookTimeout)
	check("RepositoryFor(db)", l.RepositoryFor(db), offsite)

	cfg := l.Backups["gitlab-config"]
	check("cfg.Source.Paths", cfg.Source.Paths, []string{filepath.Join(dir, "config"), "/srv/gitlab/data"})
	check("cfg.Source.Exclude", cfg.Source.Exclude, []string{"*.log"})
	check("cfg.Retention.KeepWithin", cfg.Retention.KeepWithin, "1y2m3d4h")
	check("cfg.Hooks", cfg.Hooks, Hooks{Before: []string{"echo before"}, After: []string{"echo after"}, Timeout: 90 * time.Second})
	check("cfg.Drill.Timeout", cfg.Drill.Timeout, DefaultDrillTimeout)
	check("cfg.Drill.Checks", cfg.Drill.Checks, []Check{
		{Path: filepath.Join(dir, "config/gitlab.rb"), SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{Path: "/srv/gitlab/data/VERSION"},
	})
	check("cfg.Tags", cfg.Tags, []string{"gitlab"})
	check("RepositoryFor(cfg)", l.RepositoryFor(cfg), local)
	check("cfg.Timeout", cfg.Timeout, 2*time.Hour)
	check("cfg.Jitter", cfg.Jitter, 5*time.Minute)
	check("cfg.Heartbeat", cfg.Heartbeat, Heartbeat{URLEnv: "HC_GITLAB_CONFIG"})
	check("db.Timeout", db.Timeout, DefaultBackupTimeout)

	check("Notify", len(l.Notify), 3)
	check("Notify[0].On", l.Notify[0].On, []string{notify.BackupFailed, notify.Recovered})
	check("Notify[2].URLFile", l.Notify[2].URLFile, filepath.Join(dir, "secrets/slack.url"))
	check("Serve", l.Serve, Serve{
		Listen: "0.0.0.0:8470", TokenFile: filepath.Join(dir, "secrets/serve.token"), Concurrency: 3,
		StaleLockAge: DefaultStaleLockAge, ShutdownTimeout: DefaultShutdownTimeout,
		PruneTimeout: DefaultPruneTimeout, Refresh: DefaultRefresh,
	})
}

func TestServeDefaults(t *testing.T) {
	l, err := Parse("/lab/lab.yaml", []byte("name: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Serve{Listen: DefaultListen, Concurrency: DefaultConcurrency, StaleLockAge: DefaultStaleLockAge,
		ShutdownTimeout: DefaultShutdownTimeout, PruneTimeout: DefaultPruneTimeout, Refresh: DefaultRefresh}
	if l.Serve != want {
		t.Errorf("Serve = %+v, want %+v", l.Serve, want)
	}
}

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8470": true, "[::1]:80": true, "localhost:1": true, "127.8.9.1:2": true,
		"0.0.0.0:8470": false, ":8470": false, "[::]:1": false, "192.168.1.2:80": false, "lab.example:80": false, "junk": false,
	} {
		if got := LoopbackAddr(addr); got != want {
			t.Errorf("LoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestAnchors(t *testing.T) {
	l, err := Load("testdata/anchors.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	photos := l.Backups["photos"]
	if photos.Provider != ProviderRestic || photos.Repository != "local" {
		t.Errorf("merged fields not inherited: %+v", photos)
	}
	if want := (Retention{KeepWeekly: 4}); photos.Retention != want {
		t.Errorf("Retention = %+v, want %+v (explicit keys replace merged ones)", photos.Retention, want)
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		dir      string
		wantName string
	}{
		{"My Lab", "my-lab"},
		{"devlab", "devlab"},
		{"_Home.Lab", "home-lab"},
		{"...", "lab"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tt.dir)
			path := filepath.Join(dir, "lab.yaml")
			data := []byte("repositories:\n  r: {url: 'local:repo', password_file: pass}\n")
			l, err := Parse(path, data)
			if err != nil {
				t.Fatal(err)
			}
			if l.Name != tt.wantName {
				t.Errorf("Name = %q, want %q", l.Name, tt.wantName)
			}
			if want := filepath.Join(dir, ".homelab"); l.StateDir != want {
				t.Errorf("StateDir = %q, want %q", l.StateDir, want)
			}
			r := l.Repositories["r"]
			if want := "local:" + filepath.Join(dir, "repo"); r.URL != want {
				t.Errorf("URL = %q, want %q", r.URL, want)
			}
			if want := filepath.Join(dir, "pass"); r.PasswordFile != want {
				t.Errorf("PasswordFile = %q, want %q", r.PasswordFile, want)
			}
		})
	}
}

func TestRepositoryURL(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"/srv/restic", "/srv/restic"},
		{"restic", "/lab/restic"},
		{"../restic", "/restic"},
		{"local:/srv/restic", "local:/srv/restic"},
		{"s3:s3.amazonaws.com/bucket", "s3:s3.amazonaws.com/bucket"},
		{"sftp:user@host:/srv/restic", "sftp:user@host:/srv/restic"},
		{"rest:https://host:8000/", "rest:https://host:8000/"},
		{"rclone:remote:bucket", "rclone:remote:bucket"},
	} {
		if got := repositoryURL("/lab", tt.url); got != tt.want {
			t.Errorf("repositoryURL(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

func TestBackupLookup(t *testing.T) {
	l, err := Load("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Backup("gitlab")
	if !errors.Is(err, ErrUnknownTarget) {
		t.Fatalf("Backup(gitlab) error = %v, want ErrUnknownTarget", err)
	}
	if want := `unknown backup target "gitlab" (known: gitlab-config, gitlab-db)`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	empty := &Lab{Path: "/lab/lab.yaml"}
	if _, err := empty.Backup("x"); err == nil || !strings.Contains(err.Error(), "defines no backups") {
		t.Errorf("empty lab: error = %v", err)
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		spec string
		ok   bool
	}{
		{"0 2 * * *", true},
		{"*/15 * * * 1-5", true},
		{"@daily", true},
		{"@every 6h", true},
		{"CRON_TZ=Europe/Paris 30 5 * * 0", true},
		{"", false},
		{"0 2 * *", false},
		{"0 0 2 * * *", false}, // no seconds field
		{"CRON_TZ=Nowhere/Else 0 2 * * *", false},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := ParseSchedule(tt.spec)
			if (err == nil) != tt.ok {
				t.Errorf("ParseSchedule(%q) error = %v, want ok=%v", tt.spec, err, tt.ok)
			}
		})
	}
	s, err := ParseSchedule("CRON_TZ=UTC 0 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 1, 1, 3, 0, 0, 0, time.UTC)
	if got, want := s.Next(from), time.Date(2025, 1, 2, 2, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next = %v, want %v", got, want)
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab.yaml")
	_, err := Load(path)
	var errs *Errors
	if !errors.As(err, &errs) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load error = %v, want *Errors wrapping fs.ErrNotExist", err)
	}
	if want := path + ": no such file or directory"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{
		{FieldError{File: "lab.yaml", Line: 12, Column: 5, Field: "backups.db.schedule", Msg: "bad"}, "lab.yaml:12:5: backups.db.schedule: bad"},
		{FieldError{File: "lab.yaml", Line: 3, Msg: "did not find expected key"}, "lab.yaml:3: did not find expected key"},
		{FieldError{File: "lab.yaml", Msg: "no such file or directory"}, "lab.yaml: no such file or directory"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		name string
		flag string
		file bool // ./lab.yaml exists
		env  string
		want string
	}{
		{"flag wins", "other.yaml", true, "/env/lab.yaml", "other.yaml"},
		{"local file", "", true, "/env/lab.yaml", "lab.yaml"},
		{"env", "", false, "/env/lab.yaml", "/env/lab.yaml"},
		{"default", "", false, "", "lab.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			t.Setenv(EnvLab, tt.env)
			if tt.file {
				if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := Find(tt.flag); got != tt.want {
				t.Errorf("Find(%q) = %q, want %q", tt.flag, got, tt.want)
			}
		})
	}
}

// TestRepositoryS3Keys: a repository on S3 takes its keys inline in the
// repository, with *_file paths resolved against the lab file's
// directory.
func TestRepositoryS3Keys(t *testing.T) {
	l, err := Parse("/etc/homelab/lab.yaml", []byte(`repositories:
  offsite:
    url: s3:http://127.0.0.1:9000/backups/lab
    password_env: RESTIC_PASSWORD
    access_key_id_file: keys/id
    secret_access_key_env: S3_SECRET
    region: eu-west-1
`))
	if err != nil {
		t.Fatal(err)
	}
	r := l.Repositories["offsite"]
	want := S3Credentials{AccessKeyIDFile: "/etc/homelab/keys/id", SecretAccessKeyEnv: "S3_SECRET", Region: "eu-west-1"}
	if !r.IsS3() || r.S3Credentials != want {
		t.Errorf("repository = %+v, want S3 with %+v", r, want)
	}
}

// TestS3Locations: an s3-mirror source or destination, or a pgbackrest
// repository, that names an entry of s3_locations gets its fields, with its paths resolved against
// the lab file's directory and a prefix given beside the name kept.
func TestS3Locations(t *testing.T) {
	l, err := Load("testdata/s3locations.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(l.Path)
	b := l.Backups["media"]
	want := S3Location{Endpoint: "http://backup.lab:7070", Bucket: "backups", Prefix: "mirrors",
		CAFile: filepath.Join(dir, "offsite-ca.pem"), Location: "offsite",
		S3Credentials: S3Credentials{AccessKeyIDEnv: "BK_KEY", SecretAccessKeyFile: filepath.Join(dir, "keys/bk-secret"), Region: "us-east-1"}}
	if b.Destination != want {
		t.Errorf("destination = %+v\nwant %+v", b.Destination, want)
	}
	src := S3Location{Endpoint: "https://s3.lab:9000", Bucket: "media", Prefix: "uploads/", Location: "media-store",
		S3Credentials: S3Credentials{AccessKeyIDEnv: "SRC_KEY", SecretAccessKeyEnv: "SRC_SECRET"}}
	if b.Source.S3Location != src {
		t.Errorf("source = %+v\nwant %+v", b.Source.S3Location, src)
	}
	db := S3Location{Endpoint: "https://s3.lab:9000", Bucket: "media", Prefix: "pgbackrest/db", Location: "media-store",
		S3Credentials: S3Credentials{AccessKeyIDEnv: "SRC_KEY", SecretAccessKeyEnv: "SRC_SECRET"}}
	if r := l.Backups["db"].PgBackRest.Repo; r.S3Location != db || !r.IsS3() || r.Path != "" {
		t.Errorf("pgbackrest repo = %+v\nwant %+v", r, db)
	}
	if l.S3Locations["media-store"].Prefix != "" {
		t.Errorf("the named location was changed: %+v", l.S3Locations["media-store"])
	}
}
