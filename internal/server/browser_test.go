package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"homelab/internal/testenv"
)

// TestStatusPageBrowser loads the status page in a real headless Chromium:
// the visible text must name what matters, a phone-sized viewport must
// not scroll sideways, and a screenshot is kept as an artifact.
func TestStatusPageBrowser(t *testing.T) {
	bin := testenv.Chromium(t)
	const token = "browser-token"
	f := newFixture(t, token, fixtureJobs, withFixtureHost)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	// The machine may be slow: give the whole browser session a minute.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithErrorf(t.Logf))
	defer cancelTab()

	// Log in the way a phone's browser does: Basic auth, token as password.
	url := strings.Replace(f.url, "http://", "http://phone:"+token+"@", 1) + "/"
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("backups"))); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"devlab", "Needs attention", "1 overdue, 1 drill failed of 4 targets",
		"files", "gitlab-db", "photos", "scratch", "OVERDUE",
		"FAILED", indexMissing, // photos' last drill
		permissionDenied, // a recent failure
		`<script>alert("x")</script> & friends`,
		"backup running", "drill queued", "postgres", "compose", "systemd",
		"2 of 3 services failing", "dsn_env PG_DSN is not set", "systemd · STOPPED", "compose · up 3h 12m", // services' health
		"1 cert missing, 1 cert expiring", "CN=devlab CA,O=homelab", "CN=registry.lab", "2026-12-13", "20 days", // certificates
		"ROTATE", "MISSING", "due for rotation: 20 days left", "not issued: run homelab cert issue wiki",
		"HOST", "nas · up 2d 3h", "/srv/restic, /srv/photos", "FILLING 3.5 days", "1 filesystem filling", "devlab-gitlab-1", "3 restarts", "3.89 EUR for 30 days (estimated", // the host
		"ALERTS", "NodeDown", "nas is down", "resolved 3h ago", "silenced by alice, ends in 1h: swapping the disk", // the Alertmanager's
		"HISTORY", "drill time to restore", // the targets' charts
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q; it shows:\n%s", want, text)
		}
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "devlab") {
		t.Errorf("title %q", title)
	}
	certRows(t, ctx, 1280)
	shot(t, ctx, "status-page.png")

	// A phone: 390 CSS pixels wide, no sideways scrolling.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("backups"))); err != nil {
		t.Fatalf("phone viewport: %v", err)
	}
	type widths struct{ Scroll, Inner, Body int }
	w, err := chromedp.Run(ctx, chromedp.Evaluate[widths](
		`({Scroll: document.documentElement.scrollWidth, Inner: window.innerWidth, Body: document.body.scrollWidth})`))
	if err != nil {
		t.Fatal(err)
	}
	if w.Inner != 390 {
		t.Errorf("inner width %d, want 390", w.Inner)
	}
	if w.Scroll > w.Inner || w.Body > w.Inner {
		t.Errorf("the phone page scrolls sideways: scrollWidth %d, body %d, innerWidth %d", w.Scroll, w.Body, w.Inner)
	}
	// The history charts are drawn, and fit the phone's width.
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`[...document.querySelectorAll("svg.history")].map(s => s.getBoundingClientRect().width)`))
	if err != nil || len(charts) != 3 {
		t.Errorf("history charts' widths %v (%v), want 3", charts, err)
	}
	for _, cw := range charts {
		if cw <= 0 || cw > 390 {
			t.Errorf("a history chart %v px wide on a 390 px screen", cw)
		}
	}
	// The table headers give way to labels on each stacked row.
	if head, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("thead")).display`)); err != nil || head != "none" {
		t.Errorf("thead display %q (%v), want none", head, err)
	}
	phone, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OVERDUE", indexMissing, permissionDenied, "ROTATE", "MISSING", "CN=registry.lab", "20 days left", "FILLING 3.5 days", "/srv/restic"} {
		if !strings.Contains(phone, want) {
			t.Errorf("the phone page does not show %q", want)
		}
	}
	certRows(t, ctx, 390)
	shot(t, ctx, "status-page-phone.png")
}

// certRows checks that the TLS card shows one row per certificate (the CA,
// then gitlab, registry and wiki), each rendered with a height and within
// the viewport's width, with its mark.
func certRows(t *testing.T, ctx context.Context, width int) {
	t.Helper()
	type row struct {
		Text                string
		Left, Right, Height float64
		Hidden              bool
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll("table.certs tbody tr")].map(tr => {
		const r = tr.getBoundingClientRect();
		return {Text: tr.innerText, Left: r.left, Right: r.right, Height: r.height,
			Hidden: getComputedStyle(tr).visibility !== "visible" || getComputedStyle(tr).display === "none"};
	})`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ name, mark string }{{"ca", "OK"}, {"gitlab", "OK"}, {"registry", "ROTATE"}, {"wiki", "MISSING"}}
	if len(rows) != len(want) {
		t.Fatalf("%d px: %d certificate rows, want %d: %+v", width, len(rows), len(want), rows)
	}
	for i, r := range rows {
		if r.Hidden || r.Height <= 0 || r.Left < 0 || r.Right > float64(width) {
			t.Errorf("%d px: certificate row %d not visible within the page: %+v", width, i, r)
		}
		if !strings.HasPrefix(r.Text, want[i].name) || !strings.Contains(r.Text, want[i].mark) {
			t.Errorf("%d px: certificate row %d is %q, want %s with %s", width, i, r.Text, want[i].name, want[i].mark)
		}
	}
}

// shot saves a full-page PNG screenshot as a test artifact.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := artifactsDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// artifactsDir is $HOMELAB_ARTIFACTS, or artifacts/ at the module root.
func artifactsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("HOMELAB_ARTIFACTS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "artifacts")
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
