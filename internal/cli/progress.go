package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"homelab/internal/restic"
)

// progress renders restic status lines: a bar (bytes, files, ETA) on a
// terminal, otherwise a log line every logEvery at most.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	logEvery time.Duration
	target   string
	bar      *progressbar.ProgressBar
	last     time.Time
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, logEvery: 5 * time.Second}
}

// Update is a backup.Manager Progress function.
func (p *progress) Update(target string, s restic.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bytes, files := s.Done()
	if target != p.target {
		p.finishLocked()
		p.target = target
		p.last = time.Time{}
	}
	if !p.tty {
		if time.Since(p.last) < p.logEvery {
			return
		}
		p.last = time.Now()
		fmt.Fprintf(p.w, "%s: %s %d/%d files, %s/%s", target, pct(s.PercentDone), files, s.TotalFiles, size(bytes), size(s.TotalBytes))
		// ETA only when restic knows the total (not for a streamed dump).
		if s.TotalBytes > 0 && s.SecondsRemaining > 0 && s.SecondsRemaining < 30*24*3600 {
			fmt.Fprintf(p.w, ", ETA %s", time.Duration(s.SecondsRemaining)*time.Second)
		}
		fmt.Fprintln(p.w)
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	if s.TotalBytes > 0 {
		p.bar.ChangeMax64(s.TotalBytes)
	}
	p.bar.Describe(fmt.Sprintf("%s %d/%d files", target, files, s.TotalFiles))
	p.bar.Set64(bytes)
}

func (p *progress) finishLocked() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}

// Done clears the bar.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
	p.target = ""
}

func pct(f float64) string { return fmt.Sprintf("%3.0f%%", f*100) }
