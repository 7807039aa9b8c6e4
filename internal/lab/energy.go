package lab

import "regexp"

// DefaultPowercap is Energy.Powercap when the file leaves it out.
const DefaultPowercap = "/sys/class/powercap"

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// Energy says how the daemon measures the host's energy and what it
// costs; nil when the lab has no energy section.
type Energy struct {
	// PricePerKWh is the price of a kilowatt-hour in Currency.
	PricePerKWh float64 `yaml:"price_per_kwh"`
	// Currency is an ISO 4217 code such as EUR.
	Currency string `yaml:"currency"`
	// RAPL reads the CPU packages' RAPL energy counters (Powercap);
	// exclusive with Watts.
	RAPL bool `yaml:"rapl"`
	// Powercap is where the RAPL zones are; default /sys/class/powercap.
	Powercap string `yaml:"powercap"`
	// Watts is a model of the machine's draw over its CPU load, for
	// hosts without RAPL (or to count the whole machine, not just its
	// CPUs); exclusive with RAPL.
	Watts *Watts `yaml:"watts"`
}

// Watts is a linear power model: Idle watts at rest, Busy at full CPU
// load, in between in proportion.
type Watts struct {
	Idle float64 `yaml:"idle"`
	Busy float64 `yaml:"busy"`
}

func (e *Energy) setDefaults(dir string) {
	if e != nil && e.RAPL {
		if e.Powercap == "" {
			e.Powercap = DefaultPowercap
		}
		e.Powercap = absPath(dir, e.Powercap)
	}
}

func (d *decoder) validateEnergy(p string, e *Energy) {
	if e == nil {
		return
	}
	if e.PricePerKWh < 0 {
		d.at(p+".price_per_kwh", "must not be negative, got %v", e.PricePerKWh)
	}
	if !currencyPattern.MatchString(e.Currency) {
		d.at(p+".currency", "expected an ISO 4217 code such as EUR, got %q", e.Currency)
	}
	d.exclusive(p, true, []string{"rapl", "watts"}, e.RAPL, e.Watts != nil)
	if e.Powercap != "" && !e.RAPL {
		d.at(p+".powercap", "only used with rapl: true")
	}
	if w := e.Watts; w != nil {
		if w.Idle <= 0 {
			d.at(p+".watts.idle", "must be more than 0, got %v", w.Idle)
		}
		if w.Busy < w.Idle {
			d.at(p+".watts.busy", "must be at least idle (%v), got %v", w.Idle, w.Busy)
		}
	}
}
