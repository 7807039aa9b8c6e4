package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium (or Chrome) binary for browser
// tests: $HOMELAB_CHROMIUM, or the first of chromium, chromium-browser,
// google-chrome-stable and google-chrome found in PATH.
func Chromium(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("HOMELAB_CHROMIUM"); bin != "" {
		p, err := exec.LookPath(bin)
		if err != nil {
			Missing(t, "HOMELAB_CHROMIUM=%s: %v", bin, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "chromium not found in PATH")
	return ""
}
