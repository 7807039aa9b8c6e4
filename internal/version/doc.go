// Package version works out upgrade paths: which versions a service must
// step through to get from the version it runs to the one asked for. It is
// pure (no I/O, no clock); the upgrade saga applies the path one stop at a
// time (backup, bump, wait healthy).
//
// [Parse] reads versions the way image tags and packages write
// them ("16.7.10-ce.0", "1.2.3", "v2.0.0-rc1", "2.4.1-2"), and [Compare]
// orders them: releases numerically, pre-releases before their release
// (SemVer 2.0.0 §11), package revisions after it (Debian's "-1", GitLab's
// "-ce.0"), build metadata ignored. See [Version] for the full rules.
//
// [Path] takes the current version, the target and the required stops,
// and returns every stop strictly between the two, ascending and without
// duplicates, then the target. It refuses a target equal to the current
// version ([ErrAlreadyAt]), a downgrade unless allowed ([ErrDowngrade]),
// and a change of edition such as GitLab CE to EE ([ErrEditionMismatch]).
//
// Required stops come from the lab file (a service's
// upgrade.required_stops) and from a built-in [Preset] such as "gitlab"
// ([LookupPreset]), GitLab's documented required upgrade stops.
// [Preset.StopsFor] writes a preset's stops in the target's form
// (16.7.10 becomes 16.7.10-ce.0 on the way to 17.0.0-ce.0) and refuses
// when the list does not cover the versions asked for, or when a stop the
// documentation names only by minor (GitLab 18.2) has no patch pinned in
// the lab file:
//
//	p, _ := upgrade.LookupPreset("gitlab")
//	fromPreset, err := p.StopsFor(current, target, labStops)
//	...
//	path, err := upgrade.Path(current, target, append(labStops, fromPreset...), opts)
//
// Path returns stops as they were written, so a lab file's stops should be
// written the way the service's versions are (16.7.10-ce.0 for a GitLab
// image, not 16.7.10): of a lab stop and a preset stop that compare equal,
// the one given first is kept.
package version
