package status

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"homelab/internal/certs"
	"homelab/internal/lab"
)

// cert is a certificate read at epoch that expires in days days, with a
// 30-day rotation window.
func cert(name string, days int, issues ...string) certs.Cert {
	notAfter := epoch.Add(time.Duration(days) * 24 * time.Hour)
	start := notAfter.Add(-30 * 24 * time.Hour)
	kind := certs.KindLeaf
	if name == "ca" {
		kind = certs.KindCA
	}
	return certs.Cert{
		Name: name, Kind: kind, Exists: true, Subject: "CN=" + name + ".lab",
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter, DaysLeft: days,
		WindowStart: start, InWindow: !epoch.Before(start), Expired: !epoch.Before(notAfter),
		Issues: issues,
	}
}

func TestAddCertsStates(t *testing.T) {
	tests := []struct {
		name    string
		c       certs.Cert
		state   string
		mark    string
		healthy bool
	}{
		{"fine", cert("web", 80), CertOK, "ok", true},
		{"window", cert("web", 20, "due for rotation: 20 days left (window opened 2026-11-13)"), CertRotate, "ROTATE", false},
		// The dates decide, whatever the issues say.
		{"window without an issue", cert("web", 29), CertRotate, "ROTATE", false},
		{"expired", cert("web", -3, "expired on 2026-11-20"), CertExpired, "EXPIRED", false},
		{"missing", certs.Cert{Name: "web", Kind: certs.KindLeaf, Issues: []string{"not issued: run homelab cert issue web"}}, CertMissing, "MISSING", false},
		{"issue", cert("web", 80, "SANs differ from the lab file: run homelab cert rotate web", "other"), CertProblem,
			"SANs differ from the lab file: run homelab cert rotate web", false},
		{"unreadable", certs.Cert{Name: "web", Kind: certs.KindLeaf, Exists: true, Issues: []string{"bad certificate pki/web.pem: no PEM block"}},
			CertProblem, "bad certificate pki/web.pem: no PEM block", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Healthy: true}
			r.AddCerts(certs.Report{Configured: true, CA: cert("ca", 3000), Leaves: []certs.Cert{tt.c}})
			if len(r.Certs) != 2 || r.Certs[0].Name != "ca" || r.Certs[0].State != CertOK {
				t.Fatalf("certs %+v, want the CA (ok) then web", r.Certs)
			}
			c := r.Certs[1]
			if c.State != tt.state || c.Mark() != tt.mark {
				t.Errorf("state %q mark %q, want %q %q", c.State, c.Mark(), tt.state, tt.mark)
			}
			if r.Healthy != tt.healthy {
				t.Errorf("healthy %v, want %v", r.Healthy, tt.healthy)
			}
			if got := len(r.CertProblems()); got != map[bool]int{true: 0, false: 1}[tt.healthy] {
				t.Errorf("problems %q", r.CertProblems())
			}
		})
	}
}

func TestAddCertsNotConfigured(t *testing.T) {
	r := Report{Healthy: true, Certs: []CertStatus{{Name: "stale"}}}
	r.AddCerts(certs.Report{Healthy: true, CA: certs.Cert{Name: "ca", Issues: []string{"no CA: run homelab cert init"}}})
	if r.Certs != nil || !r.Healthy {
		t.Errorf("certs %+v healthy %v, want nil and healthy", r.Certs, r.Healthy)
	}
	// It never makes an unhealthy report healthy.
	r.Healthy = false
	r.AddCerts(certs.Report{Configured: true, Healthy: true, CA: cert("ca", 3000)})
	if r.Healthy {
		t.Error("AddCerts made an unhealthy report healthy")
	}
}

func TestAddCertsOrder(t *testing.T) {
	r := Report{Healthy: true}
	r.AddCerts(certs.Report{Configured: true, CA: cert("ca", 3000), Leaves: []certs.Cert{cert("web", 80), cert("api", 80), cert("mail", 80)}})
	var names []string
	for _, c := range r.Certs {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "ca api mail web" {
		t.Errorf("order %q, want the CA, then the leaves by name", got)
	}
}

func TestCertProblems(t *testing.T) {
	r := Report{Healthy: true}
	r.AddCerts(certs.Report{Configured: true, CA: cert("ca", 3000), Leaves: []certs.Cert{
		cert("a", 10), cert("b", 5), cert("c", -1), {Name: "d"}, {Name: "e"}, cert("f", 80, "key pki/f.key does not match the certificate"),
	}})
	want := []string{"1 cert expired", "2 certs missing", "1 cert with issues", "2 certs expiring"}
	if got := r.CertProblems(); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("got %q, want %q", got, want)
	}
	if v := verdict(r); v != "NEEDS ATTENTION: "+strings.Join(want, ", ") {
		t.Errorf("verdict %q", v)
	}
}

func TestRenderCertsHealthy(t *testing.T) {
	r := Report{Lab: "devlab", Generated: epoch, Healthy: true}
	r.AddCerts(certs.Report{Configured: true, CA: cert("ca", 3000), Leaves: []certs.Cert{cert("web", 80)}})
	var b bytes.Buffer
	if err := RenderText(&b, r, epoch); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nhealthy: no backup targets, all 2 certs\n",
		"\nTLS\nCERT  SUBJECT     EXPIRES     DAYS LEFT  STATE\n" +
			"ca    CN=ca.lab   2035-02-09  3000       ok\n" +
			"web   CN=web.lab  2027-02-11  80         ok\n\nRECENT FAILURES\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}

func TestRenderCertsWidth(t *testing.T) {
	// Long subjects and issues are cut to fit 80 columns; the dates and
	// marks are never cut.
	const subject = "CN=registry-mirror.internal.example.lab,OU=platform team,O=homelab,L=Somewhere,C=FR"
	tls := func(t *testing.T, name string) []string {
		t.Helper()
		long := cert(name, 80, "not signed by the current CA: run homelab cert rotate "+name+", then reload whatever serves it")
		long.Subject = subject
		expired := cert("old", -400, "expired on 2025-10-19")
		expired.Subject = subject
		r := Report{Lab: "devlab", Generated: epoch, Healthy: true}
		r.AddCerts(certs.Report{Configured: true, CA: cert("ca", 3000), Leaves: []certs.Cert{long, expired, {Name: "new"}}})
		var b bytes.Buffer
		if err := RenderText(&b, r, epoch); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "NEEDS ATTENTION: 1 cert expired, 1 cert missing, 1 cert with issues\n") {
			t.Errorf("verdict in\n%s", b.String())
		}
		_, s, _ := strings.Cut(b.String(), "\nTLS\n")
		s, _, _ = strings.Cut(s, "\n\n")
		lines := strings.Split(s, "\n")
		if len(lines) != 5 {
			t.Fatalf("want a header and 4 rows, got\n%s", s)
		}
		for _, line := range lines {
			if n := utf8.RuneCountInString(line); n > lineWidth {
				t.Errorf("%d columns: %q", n, line)
			}
		}
		return lines
	}
	got := strings.Join(tls(t, "mirror"), "\n")
	want := "" +
		"CERT    SUBJECT            EXPIRES     DAYS LEFT  STATE\n" +
		"ca      CN=ca.lab          2035-02-09  3000       ok\n" +
		"mirror  CN=registry-m ...  2027-02-11  80         not signed by the current ...\n" +
		"new     -                  -           -          MISSING\n" +
		"old     CN=registry-m ...  2025-10-19  -400       EXPIRED"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// A long name leaves less to the subject and the issue.
	if rows := tls(t, "registry-mirror-eu-west"); !strings.HasPrefix(rows[4], "registry-mirror-eu-west  CN=regis ...  2027-02-11  80         not signed") {
		t.Errorf("row %q", rows[4])
	}
}

func TestRenderCertsJSON(t *testing.T) {
	r := Report{Lab: "devlab", Generated: epoch, Healthy: true}
	r.AddCerts(certs.Report{Configured: true, CA: cert("ca", 3000), Leaves: []certs.Cert{
		cert("web", 20, "due for rotation: 20 days left (window opened 2026-11-13)"),
		{Name: "wiki", Kind: certs.KindLeaf, Issues: []string{"not issued: run homelab cert issue wiki"}},
	}})
	var b bytes.Buffer
	if err := RenderJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Healthy bool
		Certs   []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Healthy || len(got.Certs) != 3 {
		t.Fatalf("healthy %v, %d certs: %s", got.Healthy, len(got.Certs), b.Bytes())
	}
	web, wiki := got.Certs[1], got.Certs[2]
	for k, want := range map[string]any{
		"name": "web", "kind": "leaf", "state": "rotate", "subject": "CN=web.lab", "not_after": "2026-12-13T10:15:00Z",
		"window_start": "2026-11-13T10:15:00Z", "days_left": 20.0, "in_window": true, "expired": false,
	} {
		if web[k] != want {
			t.Errorf("web %s: %v, want %v", k, web[k], want)
		}
	}
	for k, want := range map[string]any{"state": "missing", "subject": "", "not_after": nil, "window_start": nil, "days_left": nil} {
		if v, ok := wiki[k]; !ok || v != want {
			t.Errorf("wiki %s: %v (present %v), want %v", k, v, ok, want)
		}
	}
	if is, ok := wiki["issues"].([]any); !ok || len(is) != 1 {
		t.Errorf("wiki issues %v", wiki["issues"])
	}
	if is, ok := got.Certs[0]["issues"].([]any); !ok || len(is) != 0 {
		t.Errorf("CA issues %v, want []", got.Certs[0]["issues"])
	}
}

// TestAddCertsFromDisk judges real files through certs.Status: a leaf
// issued 100 days ago (expired) and one whose key was replaced.
func TestAddCertsFromDisk(t *testing.T) {
	l, err := lab.Parse(filepath.Join(t.TempDir(), "lab.yaml"), []byte(`
name: devlab
certs:
  leaves:
    old: {sans: [old.lab]}
    web: {sans: [web.lab]}
`))
	if err != nil {
		t.Fatal(err)
	}
	issued := epoch.Add(-100 * 24 * time.Hour)
	m := &certs.Manager{Lab: l, Now: func() time.Time { return issued }}
	if _, err := m.Init(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Issue(t.Context(), "old", false); err != nil {
		t.Fatal(err)
	}
	issued = epoch.Add(-time.Hour)
	if _, err := m.Issue(t.Context(), "web", false); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(l.Certs.Leaves["old"].KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.Certs.Leaves["web"].KeyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	cr, err := certs.Status(l, epoch)
	if err != nil {
		t.Fatal(err)
	}
	r := Report{Healthy: true}
	r.AddCerts(cr)
	if r.Healthy || len(r.Certs) != 3 {
		t.Fatalf("healthy %v, certs %+v", r.Healthy, r.Certs)
	}
	if c := r.Certs[1]; c.Name != "old" || c.State != CertExpired || c.DaysLeft != -10 || c.Mark() != "EXPIRED" {
		t.Errorf("old: %+v", c)
	}
	if c := r.Certs[2]; c.Name != "web" || c.State != CertProblem || !strings.Contains(c.Mark(), "does not match the certificate") {
		t.Errorf("web: %+v (mark %q)", c, c.Mark())
	}
}
