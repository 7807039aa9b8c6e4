package host

import (
	"math"
	"time"
)

// Sample is the free space (FS.Avail, bytes) of a filesystem at a time.
type Sample struct {
	Time  time.Time
	Avail uint64
}

// MinSpan is the least time that a forecast's samples must span: free
// space sampled over a few minutes says nothing about the weeks ahead.
const MinSpan = time.Hour

// Forecast fits a least-squares line to the free space of samples (any
// order) and returns when that line reaches zero. ok is false when it
// never does (free space steady or growing), when there are fewer than
// two samples, or when they span less than MinSpan. The time returned
// may be before the newest sample (the line says the disk is full); it
// is rounded to the second.
func Forecast(samples []Sample) (full time.Time, ok bool) {
	if len(samples) < 2 {
		return time.Time{}, false
	}
	first, last := samples[0].Time, samples[0].Time
	for _, s := range samples {
		if s.Time.Before(first) {
			first = s.Time
		}
		if s.Time.After(last) {
			last = s.Time
		}
	}
	if last.Sub(first) < MinSpan {
		return time.Time{}, false
	}
	// x in seconds after first, y in bytes.
	n := float64(len(samples))
	var sx, sy float64
	for _, s := range samples {
		sx += s.Time.Sub(first).Seconds()
		sy += float64(s.Avail)
	}
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for _, s := range samples {
		dx := s.Time.Sub(first).Seconds() - mx
		sxy += dx * (float64(s.Avail) - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return time.Time{}, false
	}
	slope := sxy / sxx // bytes per second
	if slope >= 0 {
		return time.Time{}, false
	}
	secs := mx - my/slope
	if math.IsInf(secs, 0) || math.IsNaN(secs) || secs > float64(math.MaxInt64/int64(time.Second)) {
		return time.Time{}, false
	}
	return first.Add(time.Duration(secs * float64(time.Second))).Round(time.Second), true
}

// DaysUntil is how many days from now until full, in tenths (0 when full
// is not after now).
func DaysUntil(full, now time.Time) float64 {
	d := full.Sub(now).Hours() / 24
	if d <= 0 {
		return 0
	}
	return math.Round(d*10) / 10
}
