package lab

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Secret is a reference to a secret that the lab file names but never
// holds: an environment variable of homelab's own process (a `*_env`
// field) or a file (a `*_file` field, its path already resolved against
// the lab file's directory). At most one of Env and File is set
// (validation refuses both); neither set is a secret that is not
// configured.
//
// Every reference in the lab file is read by [Secret.Resolve], under one
// rule:
//   - the value is the variable's value or the file's contents with
//     leading and trailing white space removed (the trailing newline of
//     `echo secret > file`; restic trims its --password-file the same
//     way);
//   - an unset variable, an unreadable file, or a value that is empty
//     after trimming is an error (wrapping [ErrSecretUnset] for a missing
//     or empty one) naming the field and the variable or the file, never
//     the value.
type Secret struct {
	// Field is the lab-file name of the pair without its suffix:
	// "password" for password_env/password_file, "url" for
	// url_env/url_file, "token", "dsn", "env_from.AWS_SECRET_ACCESS_KEY".
	Field string
	// Env names the environment variable that holds the value.
	Env string
	// File is the path of the file that holds the value.
	File string
}

// ErrSecretUnset is wrapped by Resolve's error when the variable is unset
// or the value is empty.
var ErrSecretUnset = errors.New("secret not set")

// IsSet reports whether the lab file configures the secret at all.
func (s Secret) IsSet() bool { return s.Env != "" || s.File != "" }

// Source names where the value comes from, for messages:
// "password_env PGPASSWORD_APP" or "password_file /etc/app.pass", and
// "env_from.API_TOKEN APP_TOKEN" for an env_from entry (its Field has no
// _env suffix in the lab file); "" when the secret is not set.
func (s Secret) Source() string {
	switch {
	case s.Env != "" && strings.HasPrefix(s.Field, envFromField):
		return s.Field + " " + s.Env
	case s.Env != "":
		return s.Field + "_env " + s.Env
	case s.File != "":
		return s.Field + "_file " + s.File
	}
	return ""
}

// Resolve reads the value from homelab's environment or from the file, by
// the rule in [Secret]. A secret that is not set resolves to "" and no
// error: callers that require one check IsSet (validation already does).
func (s Secret) Resolve() (string, error) { return s.ResolveWith(os.LookupEnv) }

// ResolveWith is Resolve with the environment read by lookup (tests and
// probes that carry their own environment).
func (s Secret) ResolveWith(lookup func(string) (string, bool)) (string, error) {
	var raw string
	switch {
	case s.Env != "":
		v, ok := lookup(s.Env)
		if !ok {
			return "", unsetError(s.Source() + " is not set")
		}
		raw = v
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			// The PathError names the file and the cause, never contents.
			return "", fmt.Errorf("%s_file: %w", s.Field, err)
		}
		raw = string(b)
	default:
		return "", nil
	}
	v := strings.TrimSpace(raw)
	if v == "" {
		return "", unsetError(s.Source() + " is empty")
	}
	return v, nil
}

// unsetError is a secret that is not set or empty: its text names the
// field and the variable or file, and it matches ErrSecretUnset.
type unsetError string

func (e unsetError) Error() string        { return string(e) }
func (e unsetError) Is(target error) bool { return target == ErrSecretUnset }

// PasswordSecret is the repository's password reference (password_env,
// password_file). restic reads a password_file itself
// (RESTIC_PASSWORD_FILE), applying the same trimming.
func (r Repository) PasswordSecret() Secret {
	return Secret{Field: "password", Env: r.PasswordEnv, File: r.PasswordFile}
}

// envFromField prefixes the Field of an env_from entry's secret.
const envFromField = "env_from."

// EnvFromSecrets are the repository's env_from entries as secrets, keyed
// by the variable restic is given.
func (r Repository) EnvFromSecrets() map[string]Secret { return envFromSecrets(r.EnvFrom) }

// EnvFromSecrets are the exec runtime's env_from entries as secrets,
// keyed by the variable its commands are given.
func (e ExecRuntime) EnvFromSecrets() map[string]Secret { return envFromSecrets(e.EnvFrom) }

func envFromSecrets(envFrom map[string]string) map[string]Secret {
	out := make(map[string]Secret, len(envFrom))
	for k, from := range envFrom {
		out[k] = Secret{Field: envFromField + k, Env: from}
	}
	return out
}

// URLSecret is the channel's URL reference (url_env, url_file).
func (n Notify) URLSecret() Secret { return Secret{Field: "url", Env: n.URLEnv, File: n.URLFile} }

// TokenSecret is the daemon's HTTP token reference (token_env,
// token_file).
func (s Serve) TokenSecret() Secret {
	return Secret{Field: "token", Env: s.TokenEnv, File: s.TokenFile}
}

// URLSecret is the heartbeat URL reference (url_env).
func (h Heartbeat) URLSecret() Secret { return Secret{Field: "url", Env: h.URLEnv} }

// PasswordSecret is the database password reference of a postgres
// source (password_env, password_file).
func (s Source) PasswordSecret() Secret {
	return Secret{Field: "password", Env: s.PasswordEnv, File: s.PasswordFile}
}

// PasswordSecret is the probe's password reference (password_env,
// password_file).
func (p PostgresProbe) PasswordSecret() Secret {
	return Secret{Field: "password", Env: p.PasswordEnv, File: p.PasswordFile}
}

// DSNSecret is the probe's connection string reference (dsn_env,
// dsn_file).
func (p PostgresProbe) DSNSecret() Secret {
	return Secret{Field: "dsn", Env: p.DSNEnv, File: p.DSNFile}
}
