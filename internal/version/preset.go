package version

import (
	"fmt"
	"slices"
	"strings"
)

// Stop is one required upgrade stop of a [Preset].
type Stop struct {
	// Release is the version to stop at, without edition or package
	// revision ("16.7.10"). When MinorOnly is set it holds major.minor
	// only ("18.2").
	Release Version
	// MinorOnly is set when the source names the stop by its minor alone
	// ("upgrade to the latest 18.2 patch release") and gives no patch
	// level. Such a stop must be pinned by the lab file; see
	// [Preset.StopsFor].
	MinorOnly bool
	// Condition is empty when every installation must stop here, and
	// otherwise the source's words for which installations must ("instances
	// with NPM packages in their package registry").
	Condition string
}

// Preset is a product's documented list of required upgrade stops, with
// the range of versions the list is complete for. Get one with
// [LookupPreset]; turn it into stops for [Path] with [Preset.StopsFor].
type Preset struct {
	// Name is the preset's name in the lab file ("gitlab").
	Name string
	// Source names the document the stops come from, its URL, and the
	// releases it was current for.
	Source string
	// Releases says where to find a minor's patch releases, for the
	// message of an unpinned minor-only stop.
	Releases string
	// Stops are the required stops, ascending.
	Stops []Stop
	// From is the oldest current version the list is complete for
	// (inclusive); older installations need stops the list does not hold.
	From Version
	// Before is the first version the list does not cover (exclusive):
	// stops on the way to it or past it were not yet documented.
	Before Version
	// Suffix returns what to append to a stop's release to write it the
	// way the target is written (GitLab: "-ce.0" for a target of the ce
	// edition). Nil means stops are written as bare releases.
	Suffix func(target Version) string
}

// PresetRangeError is the error of [Preset.StopsFor] when current or target
// lies outside the versions the preset's list is complete for.
type PresetRangeError struct {
	Preset          string
	Current, Target Version
	From, Before    Version
}

func (e *PresetRangeError) Error() string {
	if Compare(e.Current, e.From) < 0 {
		return fmt.Sprintf("%s preset: its required stops are complete only from %s on, and %s is older; first upgrade to %s without the preset, with the older stops listed in the service's required_stops",
			e.Preset, e.From, e.Current, e.From)
	}
	return fmt.Sprintf("%s preset: its required stops go only up to (not including) %s, and the target %s is not below it; check the product's current upgrade notes and list the stops in the service's required_stops",
		e.Preset, e.Before, e.Target)
}

// UnpinnedStopError is the error of [Preset.StopsFor] when the path crosses
// stops the preset's source names by minor only and the caller pinned none
// of them. Minors are the minors not pinned ("18.2", "18.5"), ascending.
type UnpinnedStopError struct {
	Preset          string
	Current, Target Version
	Minors          []string
	// Example shows how to write a pin for the first minor in the
	// target's form ("18.2.N-ce.0").
	Example string
	// Releases says where to find the patch releases.
	Releases string
}

func (e *UnpinnedStopError) Error() string {
	return fmt.Sprintf("%s preset: the path from %s to %s crosses the required stop(s) %s, documented by minor only; pin the latest patch release of each in the service's required_stops (for example %s; patch releases: %s)",
		e.Preset, e.Current, e.Target, strings.Join(e.Minors, ", "), e.Example, e.Releases)
}

// StopsFor returns the preset's stops that an upgrade from current to
// target must visit, ascending, each written in the target's form: the
// stop's release followed by p.Suffix(target). For the GitLab preset the
// stop 16.7.10 on the way to 17.0.0-ce.0 is 16.7.10-ce.0, the Docker image
// tag (and Omnibus package version) of that release; on the way to a bare
// "17.0.0" it stays "16.7.10". Pass the result, with the lab file's own
// stops, to [Path], which orders, deduplicates and checks them all.
//
// A stop is included when it is strictly newer than current and strictly
// older than target. A minor-only stop (18.2) is included when the target
// is in a later minor and current in an earlier one: an installation
// already on 18.2.x, or a target inside 18.2, needs no separate stop.
//
// pins are the lab file's own required stops. A pin in the same
// major.minor as an included stop, not older than it and strictly between
// current and target, replaces it (the newest such pin, written as given):
// this is how a lab names a later patch of a documented stop (17.11.9-ce.0
// for 17.11.7), and the only way to pin a minor-only stop. A minor-only
// stop without a pin makes StopsFor refuse with *[UnpinnedStopError]
// rather than guess a patch level or stop at x.y.0. Pins that replace
// nothing are not returned; pass them to [Path] as well.
//
// No stops are returned, and nil error, when target is not newer than
// current: [Path] reports that case. Otherwise a current older than p.From
// or a target not older than p.Before gives *[PresetRangeError].
func (p Preset) StopsFor(current, target Version, pins []Version) ([]Version, error) {
	if Compare(target, current) <= 0 {
		return nil, nil
	}
	if (!p.From.IsZero() && Compare(current, p.From) < 0) || (!p.Before.IsZero() && Compare(target, p.Before) >= 0) {
		return nil, &PresetRangeError{Preset: p.Name, Current: current, Target: target, From: p.From, Before: p.Before}
	}
	suffix := ""
	if p.Suffix != nil {
		suffix = p.Suffix(target)
	}
	var out []Version
	var unpinned []string
	for _, s := range p.Stops {
		var needed bool
		if s.MinorOnly {
			needed = cmpMinor(current, s.Release) < 0 && cmpMinor(target, s.Release) > 0
		} else {
			needed = Compare(s.Release, current) > 0 && Compare(s.Release, target) < 0
		}
		if !needed {
			continue
		}
		if pin := newestPin(pins, s.Release, current, target); !pin.IsZero() {
			out = append(out, pin)
			continue
		}
		if s.MinorOnly {
			unpinned = append(unpinned, s.Release.Release())
			continue
		}
		v, err := Parse(s.Release.Release() + suffix)
		if err != nil {
			return nil, fmt.Errorf("%s preset: write stop %s for target %s: %w", p.Name, s.Release, target, err)
		}
		out = append(out, v)
	}
	if len(unpinned) > 0 {
		return nil, &UnpinnedStopError{
			Preset: p.Name, Current: current, Target: target, Minors: unpinned,
			Example: unpinned[0] + ".N" + suffix, Releases: p.Releases,
		}
	}
	return out, nil
}

// Unconditional returns a copy of p without the stops that have a
// Condition, for an installation known not to meet any of them. By default
// (p itself) conditional stops are kept: an extra stop costs time, a
// missing one can break an upgrade.
func (p Preset) Unconditional() Preset {
	p.Stops = slices.DeleteFunc(slices.Clone(p.Stops), func(s Stop) bool { return s.Condition != "" })
	return p
}

// newestPin returns the newest of pins that is in stop's major.minor, not
// older than stop, and strictly between current and target; the zero
// Version if none is.
func newestPin(pins []Version, stop, current, target Version) Version {
	var pin Version
	for _, q := range pins {
		if cmpMinor(q, stop) != 0 || Compare(q, stop) < 0 || Compare(q, current) <= 0 || Compare(q, target) >= 0 {
			continue
		}
		if pin.IsZero() || Compare(q, pin) > 0 {
			pin = q
		}
	}
	return pin
}

// cmpMinor compares a's and b's major.minor numerically.
func cmpMinor(a, b Version) int {
	amaj, amin := a.majorMinor()
	bmaj, bmin := b.majorMinor()
	if c := cmpNum(amaj, bmaj); c != 0 {
		return c
	}
	return cmpNum(amin, bmin)
}

// presets are the built-in presets by name.
var presets = map[string]Preset{
	gitlab.Name: gitlab,
}

// LookupPreset returns the built-in preset called name ("gitlab") and
// whether there is one. The Preset is a copy: changing its Stops does not
// change the built-in list.
func LookupPreset(name string) (Preset, bool) {
	p, ok := presets[name]
	if !ok {
		return Preset{}, false
	}
	p.Stops = slices.Clone(p.Stops)
	return p, true
}

// PresetNames returns the names of the built-in presets, sorted, for
// messages and lab file validation.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
