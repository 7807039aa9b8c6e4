package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStatusCerts runs homelab status over a lab whose leaf ages on a
// fixed clock: fine after issuance, expiring (ROTATE, exit 1) once inside
// its rotation window, EXPIRED after its 90 days; the CA is listed first.
func TestStatusCerts(t *testing.T) {
	issued := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	now := issued
	c := newCertLab(t)
	c.now = func() time.Time { return now }
	c.must("cert", "init")
	c.must("cert", "issue", "web")

	tests := []struct {
		after   time.Duration
		code    int
		verdict string
		row     string // the leaf's row, a regular expression
		state   string // its state in --json
	}{
		{24 * time.Hour, 0, "healthy: no backup targets, all 2 certs",
			`(?m)^web +CN=web\.lab +2027-02-21 +89 +ok$`, "ok"},
		// The window opens at two thirds of 90 days and 5 minutes.
		{61 * 24 * time.Hour, 1, "NEEDS ATTENTION: 1 cert expiring",
			`(?m)^web +CN=web\.lab +2027-02-21 +29 +ROTATE$`, "rotate"},
		{91 * 24 * time.Hour, 1, "NEEDS ATTENTION: 1 cert expired",
			`(?m)^web +CN=web\.lab +2027-02-21 +-1 +EXPIRED$`, "expired"},
	}
	for _, tt := range tests {
		now = issued.Add(tt.after)
		out, errOut, code := c.run("status")
		if code != tt.code || errOut != "" {
			t.Errorf("after %v: exit %d, want %d; stderr %q", tt.after, code, tt.code, errOut)
		}
		if !strings.Contains(out, "\n"+tt.verdict+"\n") {
			t.Errorf("after %v: no verdict %q in\n%s", tt.after, tt.verdict, out)
		}
		if !regexp.MustCompile(`(?m)^ca +CN=certlab CA,O=homelab +2036-11-20 +3[56][0-9]{2} +ok\n` + strings.TrimPrefix(tt.row, "(?m)^")).MatchString(out) {
			t.Errorf("after %v: no rows ca, then %s in\n%s", tt.after, tt.row, out)
		}

		out, _, code = c.run("status", "--json")
		var got struct {
			Healthy bool
			Certs   []struct{ Name, State string }
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("after %v: %v: %s", tt.after, err, out)
		}
		if code != tt.code || got.Healthy != (tt.code == 0) || len(got.Certs) != 2 || got.Certs[1].Name != "web" || got.Certs[1].State != tt.state {
			t.Errorf("after %v: --json exit %d: %s", tt.after, code, out)
		}
	}
}
