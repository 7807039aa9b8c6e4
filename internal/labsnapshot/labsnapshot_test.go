package labsnapshot

import (
	"slices"
	"testing"

	"homelab/internal/lab"
)

func TestStopOrder(t *testing.T) {
	l := &lab.Lab{Backups: map[string]*lab.Backup{
		"config": {Stop: []string{"web", "worker"}},
		"db":     {Stop: []string{"worker", "db"}},
		"media":  {},
	}}
	for _, tc := range []struct {
		targets, want []string
	}{
		{[]string{"config", "db", "media"}, []string{"web", "worker", "db"}},
		{[]string{"db", "config"}, []string{"worker", "db", "web"}},
		{[]string{"media"}, nil},
	} {
		if got := StopOrder(l, tc.targets); !slices.Equal(got, tc.want) {
			t.Errorf("StopOrder(%v) = %v, want %v (each service once, first stop list first)", tc.targets, got, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"before": true, "pre-restore-before-20261123T101500Z": true, "v1.2_x": true,
		"": false, "-x": false, ".x": false, "a b": false, "a/b": false, string(make([]byte, 101)): false,
	} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", name, err, ok)
		}
	}
}
