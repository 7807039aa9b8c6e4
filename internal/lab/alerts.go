package lab

import (
	"net/url"
	"strings"
)

// Alerts connects the lab to a Prometheus Alertmanager.
type Alerts struct {
	// Alertmanager is the Alertmanager whose alerts status shows; nil
	// when the lab names none.
	Alertmanager *Alertmanager `yaml:"alertmanager"`
	// Push sends homelab's failure events (backup_failed, drill_failed,
	// check_failed, prune_failed, overdue, upgrade_failed, disk_filling,
	// archiving_stuck)
	// to the Alertmanager as alerts, and resolves them on recovered.
	Push bool `yaml:"push"`
}

// Alertmanager is where an Alertmanager answers.
type Alertmanager struct {
	// URL is its base URL (http or https); the v2 API is under it.
	URL string `yaml:"url"`
	// TokenEnv or TokenFile give a bearer token, when it needs one.
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// CAFile is a PEM file of CA certificates trusted for its TLS,
	// besides the system's. Relative paths resolve against the lab
	// file's directory.
	CAFile string `yaml:"ca_file"`
}

// TokenSecret is the Alertmanager's bearer token reference.
func (a Alertmanager) TokenSecret() Secret {
	return Secret{Field: "token", Env: a.TokenEnv, File: a.TokenFile}
}

func (a *Alerts) setDefaults(dir string) {
	if am := a.Alertmanager; am != nil {
		if am.TokenFile != "" {
			am.TokenFile = absPath(dir, am.TokenFile)
		}
		if am.CAFile != "" {
			am.CAFile = absPath(dir, am.CAFile)
		}
	}
}

func (d *decoder) validateAlerts(p string, a *Alerts) {
	if a.Alertmanager == nil {
		if a.Push {
			d.at(p+".push", "needs alerts.alertmanager")
		}
		return
	}
	am, ap := a.Alertmanager, p+".alertmanager"
	if am.URL == "" {
		d.at(ap+".url", "required")
	} else if u, err := url.Parse(am.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.at(ap+".url", "expected an http or https URL such as http://127.0.0.1:9093, got %q", am.URL)
	} else if u.User != nil {
		d.at(ap+".url", "credentials in the URL are not allowed: use token_env or token_file")
	}
	d.exclusive(ap, false, []string{"token_env", "token_file"}, am.TokenEnv != "", am.TokenFile != "")
	if d.present(ap+".ca_file") && strings.TrimSpace(am.CAFile) == "" {
		d.at(ap+".ca_file", "empty path: leave the field out")
	}
}
