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
	f := newFixture(t, token, fixtureJobs)

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
		"1 of 2 services failing", "dsn_env PG_DSN is not set", "no probe", // services' health
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
	// The table headers give way to labels on each stacked row.
	if head, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("thead")).display`)); err != nil || head != "none" {
		t.Errorf("thead display %q (%v), want none", head, err)
	}
	phone, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OVERDUE", indexMissing, permissionDenied} {
		if !strings.Contains(phone, want) {
			t.Errorf("the phone page does not show %q", want)
		}
	}
	shot(t, ctx, "status-page-phone.png")
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
