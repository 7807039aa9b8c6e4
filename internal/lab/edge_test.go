package lab

import "testing"

func TestParseEdgeCases(t *testing.T) {
	tests := []struct {
		name, data, want string // want: the whole error text, "" for success
	}{
		{"list root", "- a\n", `lab.yaml:1:1: expected a mapping, got a list`},
		{"null entries", "repositories:\n  r:\nservices:\n  s:\n", "lab.yaml:2:3: repositories.r.url: required: a restic repository URL (a local path, s3:..., sftp:..., rest:...)\n" +
			"lab.yaml:2:3: repositories.r.password_file: one of password_file or password_env is required"},
		{"null sections", "repositories:\nservices:\nbackups:\n", ""},
		{"manual schedule", "repositories: {r: {url: /r, password_env: P}}\nbackups: {b: {provider: restic, repository: r, source: {paths: [/x]}, schedule: ''}}\n", ""},
		{"non-string key", "repositories:\n  [a]: {}\n", `lab.yaml:2:3: repositories: expected a string key, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("lab.yaml", []byte(tt.data))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"keep_daily", "keep_last", "keep_within", "sha256", "sql", "url"}
	for _, tt := range []struct{ in, want string }{
		{"keep_dialy", "keep_daily"},
		{"keep_lst", "keep_last"},
		{"sha", "sha256"},
		{"uri", "url"},
		{"forever", ""},
	} {
		if got := suggest(tt.in, known); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
