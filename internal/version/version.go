package version

import (
	"fmt"
	"strings"
)

// maxVersionLen is the longest version text Parse accepts: the
// length limit of a Docker image tag (distribution spec, tag grammar
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}).
const maxVersionLen = 128

// preReleaseWords are the words that make a suffix a pre-release when the
// suffix's first identifier is one of them, alone or followed directly by
// digits (rc, rc1, RC10, beta, SNAPSHOT). Compared case-insensitively.
// "m" (Maven and Spring milestones, M1) counts only with digits after it.
var preReleaseWords = []string{
	"alpha", "beta", "dev", "m", "milestone", "pre", "preview", "rc", "snapshot",
}

// Version is a version as image tags and packages write it: "1.2.3",
// "v2.0.0-rc1", "16.7.10-ce.0", "1.25-alpine", "2.4.1-2". Parse one with
// [Parse]; order two with [Compare]. The zero Version is not a
// version: [Path] refuses it, and it compares like 0.
//
// # Grammar
//
//	version  = ["v" | "V"] release ["-" suffix] ["+" build]
//	release  = number *3("." number)           ; 1 to 4 segments
//	suffix   = ident *(("." | "-") ident)      ; ident = 1*(letter | digit)
//	build    = 1*(letter | digit | "-") *("." 1*(letter | digit | "-"))
//
// Anything else is refused with a *[ParseError] naming the input: the
// empty string, "latest" (a moving tag, not a version), "1..2", "1.2.x",
// "1.2.3.4.5", "1.2.3rc1" (a pre-release needs the "-"), whitespace, "~"
// (Debian's pre-release marker is not supported), "_", and text longer
// than 128 bytes (the Docker tag limit).
//
// # Order
//
// [Compare] orders versions in three steps; the first difference decides.
//
//  1. Release segments, numerically (16.11.10 > 16.7.10, 1.10 > 1.9).
//     Missing segments count as 0, so "1.2" and "1.2.0" compare equal;
//     leading zeros do not count ("1.02" equals "1.2"). String still
//     returns the text as written.
//  2. Pre-release. A suffix whose first identifier is a pre-release word
//     (alpha, beta, dev, m, milestone, pre, preview, rc, snapshot; any
//     case; alone or followed by digits: "rc", "rc1", "rc.1", "beta-2",
//     "M1", "SNAPSHOT") makes a pre-release, which sorts before the
//     release itself (SemVer 2.0.0 §11.3: 2.0.0-rc1 < 2.0.0). Two
//     pre-releases of one release compare identifier by identifier as
//     SemVer §11.4 says (numbers numerically, words lexically in ASCII
//     order, a number before a word, the shorter list first when one is a
//     prefix of the other), with two changes made for how tags are
//     written: words compare case-insensitively, and an identifier that
//     runs letters into digits is split where they meet, so "rc10" is
//     "rc" then 10 and sorts after "rc9" and "rc1" (SemVer alone would put
//     "rc10" before "rc9"), and "rc1", "rc.1" and "rc-1" compare equal.
//     Words compare lexically as in SemVer, not by maturity: "alpha" <
//     "beta" < "dev" < "rc" < "snapshot".
//  3. Revision. Any other suffix is a package or image revision, not a
//     pre-release: Debian's "-1" and "-1ubuntu2" (Debian Policy §5.6.12,
//     debian_revision), GitLab's "-ce.0" and "-ee.0". If its first
//     identifier is letters only it is the edition ("ce", "ee", "alpine"),
//     reported by [Version.Edition] and left out of the order; the rest
//     compares like release segments, identifier by identifier (split
//     where letters meet digits; numbers numerically, words lexically, a
//     number before a word), a missing identifier counting as 0. So
//     16.7.10-ce.0 < 16.7.10-ce.1, 2.4.1-1 < 2.4.1-2 < 2.4.1-10,
//     "16.7.10", "16.7.10-ce" and "16.7.10-ce.0" compare equal, and so do
//     16.7.10-ce.0 and 16.7.10-ee.0: the same release of two editions.
//     [Path] refuses to mix editions. (apt and yum do order them, ee
//     after ce, so that an EE package replaces a CE one of the same
//     version; an edition change is not an upgrade here.)
//
// Build metadata after "+" is ignored for ordering (SemVer 2.0.0 §10), and
// so is the leading "v". Note that a "+" ends the revision, so Debian's
// "1.2-0+deb12u1" orders as revision 0.
//
// Sources: Semantic Versioning 2.0.0, https://semver.org/spec/v2.0.0.html
// (§9 pre-release, §10 build metadata, §11 precedence); Debian Policy
// Manual §5.6.12 "Version",
// https://www.debian.org/doc/debian-policy/ch-controlfields.html#version;
// GitLab's "Version format for the packages and Docker images"
// (<version>-ce.0 and <version>-ee.0),
// https://docs.gitlab.com/omnibus/development/package_version_format/.
type Version struct {
	text    string
	release []string // canonical decimal digits ("0" for zero), 1 to 4
	pre     []ident  // nil unless a pre-release; never empty when set
	edition string   // lower-case; "" when none
	rev     []ident  // revision identifiers after the edition
}

// ident is one identifier of a pre-release or revision after splitting
// where letters meet digits.
type ident struct {
	num bool
	s   string // canonical digits when num, else lower-case letters
}

// ParseError is the error of [Parse]: Input is the text as given
// and Reason says what is wrong with it.
type ParseError struct {
	Input  string
	Reason string
}

func (e *ParseError) Error() string {
	in := e.Input
	if len(in) > maxVersionLen {
		in = in[:maxVersionLen] + "..."
	}
	return fmt.Sprintf("invalid version %q: %s", in, e.Reason)
}

// Parse parses s as described on [Version]. The result's String
// returns s unchanged. A malformed s gives a *[ParseError] whose message
// names s and the reason; "latest" gets a message saying that a pinned
// version is needed.
func Parse(s string) (Version, error) {
	fail := func(format string, args ...any) (Version, error) {
		return Version{}, &ParseError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail("empty")
	}
	if len(s) > maxVersionLen {
		return fail("longer than %d bytes", maxVersionLen)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fail("contains whitespace or control characters")
	}
	if strings.EqualFold(s, "latest") {
		return fail(`"latest" moves with every push and names no version; pin one, such as 16.7.10-ce.0 or 1.2.3`)
	}
	head, build, hasBuild := strings.Cut(s, "+")
	if hasBuild {
		if build == "" {
			return fail(`empty build metadata after "+"`)
		}
		for _, id := range strings.Split(build, ".") {
			if id == "" {
				return fail("empty identifier in build metadata %q", build)
			}
			if !isAlnum(strings.ReplaceAll(id, "-", "")) {
				return fail("build metadata %q may hold only letters, digits, '-' and '.'", build)
			}
		}
	}
	rel, suffix, hasSuffix := strings.Cut(head, "-")
	if len(rel) > 1 && (rel[0] == 'v' || rel[0] == 'V') && isDigit(rel[1]) {
		rel = rel[1:]
	}
	if rel == "" || !isDigit(rel[0]) {
		return fail("a version starts with a number, optionally after v (1.2.3, v1.2.3)")
	}
	var v Version
	v.text = s
	segs := strings.Split(rel, ".")
	if len(segs) > 4 {
		return fail("%d release segments; at most 4 are allowed", len(segs))
	}
	for _, seg := range segs {
		if seg == "" {
			return fail("empty release segment")
		}
		if !isDigits(seg) {
			return fail("release segment %q is not a number", seg)
		}
		v.release = append(v.release, canonNum(seg))
	}
	if !hasSuffix {
		return v, nil
	}
	if suffix == "" {
		return fail(`empty suffix after "-"`)
	}
	raw := strings.FieldsFunc(suffix, func(r rune) bool { return r == '.' || r == '-' })
	if len(raw) != strings.Count(suffix, ".")+strings.Count(suffix, "-")+1 {
		return fail("empty identifier in suffix %q", suffix)
	}
	for _, id := range raw {
		if !isAlnum(id) {
			return fail("suffix %q may hold only letters, digits, '.' and '-'", suffix)
		}
	}
	if isPreReleaseWord(raw[0]) {
		for _, id := range raw {
			v.pre = append(v.pre, splitIdent(id)...)
		}
		return v, nil
	}
	if isLetters(raw[0]) {
		v.edition = strings.ToLower(raw[0])
		raw = raw[1:]
	}
	for _, id := range raw {
		v.rev = append(v.rev, splitIdent(id)...)
	}
	return v, nil
}

// MustParse is [Parse] for constants and tests: it panics on
// an error.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the version exactly as it was written ("v2.0.0-rc1",
// "16.7.10-ce.0"), and "" for the zero Version.
func (v Version) String() string { return v.text }

// IsZero reports whether v is the zero Version (not parsed from anything).
func (v Version) IsZero() bool { return v.text == "" }

// Edition returns the edition named by the first identifier of a revision
// suffix when it is letters only, in lower case: "ce" for 16.7.10-ce.0,
// "ee" for 16.7.10-ee.0, "alpine" for 1.25-alpine. It is "" for a version
// without a suffix, a numeric revision (2.4.1-2) and a pre-release.
func (v Version) Edition() string { return v.edition }

// IsPrerelease reports whether v has a pre-release suffix (see [Version]).
func (v Version) IsPrerelease() bool { return v.pre != nil }

// Release returns the release segments as numbers without leading zeros,
// joined by dots, as many as were written: "16.7.10" for "16.7.10-ce.0",
// "2" for "v2", "1.2" for "1.02".
func (v Version) Release() string { return strings.Join(v.release, ".") }

// MarshalText returns the version as written, so a Version encodes as its
// text in JSON and YAML.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.text), nil }

// UnmarshalText parses text with [Parse], so a Version decodes from
// a JSON or YAML string.
func (v *Version) UnmarshalText(text []byte) error {
	p, err := Parse(string(text))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// Compare returns -1 if a sorts before b, +1 if after, and 0 if they are
// equal in the order described on [Version] (equal releases, pre-releases
// and revisions; edition, build metadata, the leading "v" and the number of
// release segments written do not count). It is a total preorder, usable
// with slices.SortFunc.
func Compare(a, b Version) int {
	n := max(len(a.release), len(b.release))
	for i := range n {
		if c := cmpNum(segment(a.release, i), segment(b.release, i)); c != 0 {
			return c
		}
	}
	switch {
	case a.pre != nil && b.pre == nil:
		return -1
	case a.pre == nil && b.pre != nil:
		return 1
	case a.pre != nil:
		for i := range min(len(a.pre), len(b.pre)) {
			if c := cmpIdent(a.pre[i], b.pre[i]); c != 0 {
				return c
			}
		}
		return cmpInt(len(a.pre), len(b.pre))
	}
	zero := ident{num: true, s: "0"}
	for i := range max(len(a.rev), len(b.rev)) {
		x, y := zero, zero
		if i < len(a.rev) {
			x = a.rev[i]
		}
		if i < len(b.rev) {
			y = b.rev[i]
		}
		if c := cmpIdent(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// majorMinor returns v's first two release segments, a missing one as "0".
func (v Version) majorMinor() (string, string) {
	return segment(v.release, 0), segment(v.release, 1)
}

func segment(release []string, i int) string {
	if i < len(release) {
		return release[i]
	}
	return "0"
}

// cmpNum compares two canonical decimal strings (no leading zeros) of any
// length.
func cmpNum(a, b string) int {
	if c := cmpInt(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIdent orders identifiers as SemVer §11.4 does: numbers numerically,
// words lexically, a number before a word.
func cmpIdent(a, b ident) int {
	switch {
	case a.num && b.num:
		return cmpNum(a.s, b.s)
	case a.num:
		return -1
	case b.num:
		return 1
	}
	return strings.Compare(a.s, b.s)
}

// splitIdent splits an alphanumeric identifier where letters meet digits:
// "rc10" → rc, 10; "1ubuntu2" → 1, ubuntu, 2. Words are lower-cased and
// numbers canonicalised.
func splitIdent(id string) []ident {
	var out []ident
	for id != "" {
		num := isDigit(id[0])
		i := 1
		for i < len(id) && isDigit(id[i]) == num {
			i++
		}
		if num {
			out = append(out, ident{num: true, s: canonNum(id[:i])})
		} else {
			out = append(out, ident{s: strings.ToLower(id[:i])})
		}
		id = id[i:]
	}
	return out
}

// isPreReleaseWord reports whether the identifier id is a pre-release word,
// alone or followed directly by digits ("m" only with digits).
func isPreReleaseWord(id string) bool {
	i := 0
	for i < len(id) && !isDigit(id[i]) {
		i++
	}
	word, rest := strings.ToLower(id[:i]), id[i:]
	if rest != "" && !isDigits(rest) {
		return false
	}
	if word == "m" && rest == "" {
		return false
	}
	for _, w := range preReleaseWords {
		if word == w {
			return true
		}
	}
	return false
}

func canonNum(s string) string {
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "0"
	}
	return s
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigits(s string) bool {
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isLetters(s string) bool {
	for i := range len(s) {
		if !isLetter(s[i]) {
			return false
		}
	}
	return s != ""
}

func isAlnum(s string) bool {
	for i := range len(s) {
		if !isDigit(s[i]) && !isLetter(s[i]) {
			return false
		}
	}
	return s != ""
}
