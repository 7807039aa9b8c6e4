package version

import (
	"errors"
	"fmt"
	"slices"
)

// Sentinel errors of [Path], for errors.Is. The errors Path returns carry
// the versions involved: *[DowngradeError] for ErrDowngrade and
// *[EditionError] for ErrEditionMismatch.
var (
	// ErrAlreadyAt: the target compares equal to the current version
	// (16.7.10-ce.0 and 16.7.10 included), so there is nothing to do.
	ErrAlreadyAt = errors.New("already at the target version")
	// ErrDowngrade: the target is older than the current version and
	// PathOptions.AllowDowngrade is not set.
	ErrDowngrade = errors.New("downgrade refused")
	// ErrEditionMismatch: the current version, the target or a required
	// stop name different editions (ce and ee).
	ErrEditionMismatch = errors.New("editions differ")
)

// DowngradeError is the error of [Path] for a target older than the
// current version when downgrades are not allowed. It matches
// [ErrDowngrade] with errors.Is.
type DowngradeError struct {
	Current, Target Version
}

func (e *DowngradeError) Error() string {
	return fmt.Sprintf("refusing to downgrade from %s to %s; pass --allow-downgrade to go back anyway (database migrations do not always run backwards: restoring the backup taken before the upgrade is the safe way back)",
		e.Current, e.Target)
}

func (e *DowngradeError) Unwrap() error { return ErrDowngrade }

// EditionError is the error of [Path] when two versions name different
// editions. Other is the current version, or a required stop when Stop is
// true. It matches [ErrEditionMismatch] with errors.Is.
type EditionError struct {
	Target Version
	Other  Version
	Stop   bool
}

func (e *EditionError) Error() string {
	if e.Stop {
		return fmt.Sprintf("required stop %s is edition %s but the target %s is edition %s: list the stops in the target's edition",
			e.Other, e.Other.Edition(), e.Target, e.Target.Edition())
	}
	return fmt.Sprintf("cannot upgrade from %s to %s: the editions differ (%s, %s); moving to another edition is a product migration, not an upgrade",
		e.Other, e.Target, e.Other.Edition(), e.Target.Edition())
}

func (e *EditionError) Unwrap() error { return ErrEditionMismatch }

// PathOptions changes what [Path] accepts.
type PathOptions struct {
	// AllowDowngrade lets a target older than the current version through
	// (the CLI's --allow-downgrade). The path is then the target alone:
	// a downgrade goes straight back and visits no stops.
	AllowDowngrade bool
}

// Path returns the versions to upgrade through, in order, to go from
// current to target: every stop strictly newer than current and strictly
// older than target, ascending by [Compare], then target itself. The
// result always ends with target and is never empty when err is nil.
//
// Stops may come in any order and may repeat: of stops that compare equal
// (16.7.10-ce.0 and 16.7.10) the first one given is kept. A stop equal to
// target or current, or outside the range, is dropped. Stops are used as
// given; a [Preset]'s stops are put in the target's form by
// [Preset.StopsFor] before they get here.
//
// Editions are compared where both sides have one (see
// [Version.Edition]): a current version or a stop whose edition differs
// from the target's gives an *[EditionError] (16.7.10-ce.0 to
// 17.0.0-ee.0 is a migration from CE to EE, not an upgrade). A version
// without an edition ("16.7.10") matches any.
//
// Errors, in the order they are checked: an error for a zero current or
// target Version; *EditionError (current against target); [ErrAlreadyAt]
// when target compares equal to current; *[DowngradeError] when target is
// older than current, unless opts.AllowDowngrade, which gives [target];
// *EditionError for the first stop of another edition, in range or not
// (a service whose stops name another edition is misconfigured either
// way).
func Path(current, target Version, stops []Version, opts PathOptions) ([]Version, error) {
	if current.IsZero() || target.IsZero() {
		return nil, errors.New("upgrade path: the current and the target version must both be set")
	}
	if editionsDiffer(current, target) {
		return nil, &EditionError{Target: target, Other: current}
	}
	switch c := Compare(target, current); {
	case c == 0:
		return nil, fmt.Errorf("%w: running %s, target %s", ErrAlreadyAt, current, target)
	case c < 0 && !opts.AllowDowngrade:
		return nil, &DowngradeError{Current: current, Target: target}
	case c < 0:
		return []Version{target}, nil
	}
	var between []Version
	for _, s := range stops {
		if editionsDiffer(s, target) {
			return nil, &EditionError{Target: target, Other: s, Stop: true}
		}
		if Compare(s, current) > 0 && Compare(s, target) < 0 {
			between = append(between, s)
		}
	}
	slices.SortStableFunc(between, Compare)
	between = slices.CompactFunc(between, func(a, b Version) bool { return Compare(a, b) == 0 })
	return append(between, target), nil
}

// editionsDiffer reports whether a and b both name an edition and the
// editions are not the same.
func editionsDiffer(a, b Version) bool {
	return a.Edition() != "" && b.Edition() != "" && a.Edition() != b.Edition()
}
