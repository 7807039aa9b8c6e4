package lab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretResolve is the one rule every *_env/*_file reference of the
// lab file is read by.
func TestSecretResolve(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"PLAIN": "s3cret", "PADDED": "  s3cret \n", "BLANK": " \t\n", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	const value = "s3cret"
	for _, tc := range []struct {
		name    string
		s       Secret
		want    string
		unset   bool   // the error wraps ErrSecretUnset
		errHas  string // the error names this
		wantErr bool
	}{
		{name: "not configured", s: Secret{Field: "password"}, want: ""},
		{name: "env", s: Secret{Field: "password", Env: "PLAIN"}, want: value},
		{name: "env trimmed", s: Secret{Field: "password", Env: "PADDED"}, want: value},
		{name: "env unset", s: Secret{Field: "password", Env: "MISSING"}, wantErr: true, unset: true, errHas: "password_env MISSING is not set"},
		{name: "env_from unset", s: Secret{Field: "env_from.API_TOKEN", Env: "MISSING"}, wantErr: true, unset: true, errHas: "env_from.API_TOKEN MISSING is not set"},
		{name: "env empty", s: Secret{Field: "token", Env: "EMPTY"}, wantErr: true, unset: true, errHas: "token_env EMPTY is empty"},
		{name: "env blank", s: Secret{Field: "url", Env: "BLANK"}, wantErr: true, unset: true, errHas: "url_env BLANK is empty"},
		{name: "file", s: Secret{Field: "password", File: file("plain", value)}, want: value},
		{name: "file newline", s: Secret{Field: "password", File: file("nl", value+"\n")}, want: value},
		{name: "file crlf and spaces", s: Secret{Field: "dsn", File: file("crlf", " "+value+" \r\n")}, want: value},
		{name: "file inner space kept", s: Secret{Field: "password", File: file("inner", "correct horse\n")}, want: "correct horse"},
		{name: "file empty", s: Secret{Field: "password", File: file("empty", "\n")}, wantErr: true, unset: true, errHas: "password_file " + filepath.Join(dir, "empty") + " is empty"},
		{name: "file missing", s: Secret{Field: "url", File: filepath.Join(dir, "nope")}, wantErr: true, errHas: "url_file: open " + filepath.Join(dir, "nope")},
		// Env wins when both are set (validation refuses both anyway).
		{name: "env before file", s: Secret{Field: "password", Env: "PLAIN", File: filepath.Join(dir, "nope")}, want: value},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.s.ResolveWith(lookup)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Resolve = %q, want an error", got)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not name %q", err, tc.errHas)
				}
				if tc.unset && err.Error() != tc.errHas {
					t.Errorf("error %q, want exactly %q", err, tc.errHas)
				}
				if errors.Is(err, ErrSecretUnset) != tc.unset {
					t.Errorf("errors.Is(%v, ErrSecretUnset) = %v, want %v", err, !tc.unset, tc.unset)
				}
				for _, v := range env {
					if strings.TrimSpace(v) != "" && strings.Contains(err.Error(), strings.TrimSpace(v)) {
						t.Errorf("error %q holds a secret value", err)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestSecretSource(t *testing.T) {
	for _, tc := range []struct {
		s    Secret
		want string
	}{
		{Secret{Field: "password", Env: "PG"}, "password_env PG"},
		{Secret{Field: "dsn", File: "/etc/dsn"}, "dsn_file /etc/dsn"},
		{Secret{Field: "token"}, ""},
		{Secret{Field: "env_from.API_TOKEN", Env: "APP_TOKEN"}, "env_from.API_TOKEN APP_TOKEN"},
	} {
		if got := tc.s.Source(); got != tc.want {
			t.Errorf("%+v.Source() = %q, want %q", tc.s, got, tc.want)
		}
		if tc.s.IsSet() != (tc.want != "") {
			t.Errorf("%+v.IsSet() = %v", tc.s, tc.s.IsSet())
		}
	}
}
