package pgupgrade

import "testing"

func TestParseSetting(t *testing.T) {
	for _, c := range []struct {
		line, name, value string
		ok                bool
	}{
		{"shared_buffers = 128MB   # min 128kB", "shared_buffers", "128MB", true},
		{"Log_Line_Prefix = '%m [%p] # not a comment' # comment", "log_line_prefix", "'%m [%p] # not a comment'", true},
		{"port 5433", "port", "5433", true},
		{"  # max_connections = 100", "", "", false},
		{"", "", "", false},
		{"include_dir 'conf.d'", "include_dir", "'conf.d'", true},
	} {
		name, value, ok := parseSetting(c.line)
		if name != c.name || value != c.value || ok != c.ok {
			t.Errorf("parseSetting(%q) = %q, %q, %v; want %q, %q, %v", c.line, name, value, ok, c.name, c.value, c.ok)
		}
	}
}
