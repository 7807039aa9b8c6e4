package logs

import (
	"errors"
	"strings"
	"testing"

	"homelab/internal/lab"
)

func TestFor(t *testing.T) {
	compose := &lab.Runtime{Compose: &lab.ComposeRuntime{Project: "media", Service: "jellyfin", File: "/srv/media/compose.yaml"}}
	cfg := Config{LabPath: "/etc/homelab/lab.yaml", Docker: "/usr/bin/docker"}
	tests := []struct {
		name    string
		svc     *lab.Service
		want    string // the source's String
		wantErr error
		errText string
	}{
		{"logs.file wins over compose", &lab.Service{Name: "jf", Runtime: compose, Logs: &lab.Logs{File: "/var/log/jf.log"}}, "file /var/log/jf.log", nil, ""},
		{"logs.file wins over systemd", &lab.Service{Name: "redis", Runtime: &lab.Runtime{Systemd: &lab.SystemdRuntime{Unit: "redis.service"}}, Logs: &lab.Logs{File: "/var/log/redis.log"}}, "file /var/log/redis.log", nil, ""},
		{"compose", &lab.Service{Name: "jf", Runtime: compose}, "compose project media, service jellyfin", nil, ""},
		{"systemd", &lab.Service{Name: "redis", Runtime: &lab.Runtime{Systemd: &lab.SystemdRuntime{Unit: "redis.service"}}}, "journal of unit redis.service", nil, ""},
		{"systemd user", &lab.Service{Name: "sync", Runtime: &lab.Runtime{Systemd: &lab.SystemdRuntime{Unit: "sync.service", User: true}}}, "journal of user unit sync.service", nil, ""},
		{"exec", &lab.Service{Name: "blog", Runtime: &lab.Runtime{Exec: &lab.ExecRuntime{Start: "x", Stop: "y"}}}, "", ErrNoSource,
			"service blog: no log source: an exec runtime keeps no logs: set services.blog.logs.file in /etc/homelab/lab.yaml to the file it writes"},
		{"nothing", &lab.Service{Name: "nas"}, "", ErrNoSource,
			"service nas: no log source: set services.nas.logs.file in /etc/homelab/lab.yaml to its log file (or give it a compose runtime)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := For(tt.svc, cfg)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("For = %v, %v; want an error wrapping %v with %q", src, err, tt.wantErr, tt.errText)
				}
				return
			}
			if err != nil || src.String() != tt.want {
				t.Fatalf("For = %v, %v; want %s", src, err, tt.want)
			}
			if c, ok := src.(*Compose); ok && (c.File != "/srv/media/compose.yaml" || c.Docker != "/usr/bin/docker") {
				t.Errorf("compose source %+v, want the runtime's file and the configured docker", c)
			}
		})
	}
}
