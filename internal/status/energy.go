package status

import (
	"fmt"
	"strings"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/lab"
)

const (
	// EnergySeries is the catalog series of the host's energy: cumulative
	// joules, as the daemon's meter counts them (RAPL or the watts
	// model), continued across restarts.
	EnergySeries = "energy"
	// CPUSeries is the catalog series of the CPU's busy share (0..1)
	// over each sampling interval.
	CPUSeries = "cpu"
	// EnergyWindow is the period the energy figures cover.
	EnergyWindow = 30 * 24 * time.Hour
	// joulesPerKWh converts.
	joulesPerKWh = 3.6e6
)

// EnergyStatus is the host's energy over the last EnergyWindow and its
// cost. Every figure is an estimate: RAPL counts the CPU packages only,
// the watts model is a model, and the 30-day figures extrapolate the
// span the samples cover.
type EnergyStatus struct {
	// Source is "rapl" or "watts model 18-45 W".
	Source string
	// Span is the time the samples within the window measured (the
	// daemon's downtime left out); KWh is the energy measured over it.
	Span time.Duration
	KWh  float64
	// AvgWatts is KWh over Span, in watts.
	AvgWatts float64
	// KWh30 and Cost30 are KWh and its price extrapolated to 30 days.
	KWh30, Cost30 float64
	Currency      string
	PricePerKWh   float64
	// TotalJoules is the meter's cumulative count (the newest sample):
	// /metrics exports it as a counter.
	TotalJoules float64
	// Error says why the meter could not read (RAPL unreadable); the
	// figures are then from the samples that exist.
	Error string
}

// Measured reports whether the samples cover any time.
func (e *EnergyStatus) Measured() bool { return e != nil && e.Span > 0 }

// EnergyOf is the energy status at now from samples of EnergySeries
// (oldest first; those older than EnergyWindow are ignored) under the
// lab's energy settings; nil when the lab has none.
func EnergyOf(samples []catalog.Sample, e *lab.Energy, now time.Time) *EnergyStatus {
	if e == nil {
		return nil
	}
	es := &EnergyStatus{Source: "rapl", Currency: e.Currency, PricePerKWh: e.PricePerKWh}
	if e.Watts != nil {
		es.Source = fmt.Sprintf("watts model %g-%g W", e.Watts.Idle, e.Watts.Busy)
	}
	// Span counts only the intervals between consecutive samples whose
	// count grew: the meter starts again at the count it had after a
	// restart, and the time in between was not measured.
	var prev *catalog.Sample
	var j float64
	for i := range samples {
		s := &samples[i]
		if s.Time.Before(now.Add(-EnergyWindow)) || s.Time.After(now) {
			continue
		}
		if prev != nil && s.Value > prev.Value && s.Time.After(prev.Time) {
			es.Span += s.Time.Sub(prev.Time)
			j += s.Value - prev.Value
		}
		prev = s
		es.TotalJoules = s.Value
	}
	if es.Span <= 0 {
		return es
	}
	es.KWh = j / joulesPerKWh
	es.AvgWatts = j / es.Span.Seconds()
	es.KWh30 = es.KWh * float64(EnergyWindow) / float64(es.Span)
	es.Cost30 = es.KWh30 * e.PricePerKWh
	return es
}

// EnergyLine is the energy in one line: "≈ 19.4 kWh, 3.89 EUR for 30
// days (estimated from 2d 3h of rapl samples, avg 27 W)".
func EnergyLine(e *EnergyStatus) string {
	var b strings.Builder
	if !e.Measured() {
		b.WriteString("no estimate yet: homelab serve samples the " + e.Source)
	} else {
		fmt.Fprintf(&b, "≈ %.1f kWh, %.2f %s for 30 days (estimated from %s of %s samples, avg %.0f W)",
			e.KWh30, e.Cost30, e.Currency, Age(e.Span), e.Source, e.AvgWatts)
	}
	if e.Error != "" {
		b.WriteString("; meter: " + e.Error)
	}
	return b.String()
}

// jsonEnergy is the "energy" object of the host in RenderJSON; every
// figure is estimated (the field says so).
type jsonEnergy struct {
	Source      string  `json:"source"`
	Estimated   bool    `json:"estimated"`
	SpanSeconds float64 `json:"span_seconds"`
	KWh         float64 `json:"kwh"`
	AvgWatts    float64 `json:"avg_watts"`
	KWh30       float64 `json:"kwh_30d"`
	Cost30      float64 `json:"cost_30d"`
	Currency    string  `json:"currency"`
	PricePerKWh float64 `json:"price_per_kwh"`
	TotalJoules float64 `json:"total_joules"`
	Error       string  `json:"error,omitempty"`
}

func jsonEnergyOf(e *EnergyStatus) *jsonEnergy {
	if e == nil {
		return nil
	}
	return &jsonEnergy{Source: e.Source, Estimated: true, SpanSeconds: e.Span.Seconds(), KWh: e.KWh, AvgWatts: e.AvgWatts,
		KWh30: e.KWh30, Cost30: e.Cost30, Currency: e.Currency, PricePerKWh: e.PricePerKWh, TotalJoules: e.TotalJoules, Error: e.Error}
}
