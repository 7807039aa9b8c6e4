package version

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in         string
		release    string
		edition    string
		prerelease bool
	}{
		{in: "1.2.3", release: "1.2.3"},
		{in: "v2.0.0-rc1", release: "2.0.0", prerelease: true},
		{in: "V2.0.0", release: "2.0.0"},
		{in: "16.7.10-ce.0", release: "16.7.10", edition: "ce"},
		{in: "16.7.10-ee.0", release: "16.7.10", edition: "ee"},
		{in: "16.7.10-CE.0", release: "16.7.10", edition: "ce"},
		{in: "1", release: "1"},
		{in: "1.2", release: "1.2"},
		{in: "1.2.3.4", release: "1.2.3.4"},
		{in: "1.02.003", release: "1.2.3"},
		{in: "0.0.0", release: "0.0.0"},
		{in: "2.4.1-2", release: "2.4.1"},
		{in: "2.4.1-1ubuntu2", release: "2.4.1"},
		{in: "1.25-alpine", release: "1.25", edition: "alpine"},
		{in: "1.0.0-alpha", release: "1.0.0", prerelease: true},
		{in: "1.0.0-alpha.1", release: "1.0.0", prerelease: true},
		{in: "1.0.0-beta-2", release: "1.0.0", prerelease: true},
		{in: "1.0.0-rc.1", release: "1.0.0", prerelease: true},
		{in: "1.0.0-RC1", release: "1.0.0", prerelease: true},
		{in: "1.0-SNAPSHOT", release: "1.0", prerelease: true},
		{in: "5.3.0-M1", release: "5.3.0", prerelease: true},
		{in: "5.3.0-m", release: "5.3.0", edition: "m"}, // "m" needs digits to be a milestone
		{in: "1.0.0-dev20240101", release: "1.0.0", prerelease: true},
		{in: "1.0.0-preview.3", release: "1.0.0", prerelease: true},
		{in: "1.0.0-pre", release: "1.0.0", prerelease: true},
		{in: "1.0.0-milestone.2", release: "1.0.0", prerelease: true},
		{in: "1.0.0-rc1x", release: "1.0.0"}, // word then digits then letters: a revision
		{in: "1.0.0+build.5", release: "1.0.0"},
		{in: "1.0.0-rc.1+build-7.x", release: "1.0.0", prerelease: true},
		{in: "1.2-0+deb12u1", release: "1.2"},
		{in: "18446744073709551616.0.0", release: "18446744073709551616.0.0"}, // beyond uint64
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if v.String() != tt.in {
				t.Errorf("String() = %q, want %q", v.String(), tt.in)
			}
			if v.Release() != tt.release {
				t.Errorf("Release() = %q, want %q", v.Release(), tt.release)
			}
			if v.Edition() != tt.edition {
				t.Errorf("Edition() = %q, want %q", v.Edition(), tt.edition)
			}
			if v.IsPrerelease() != tt.prerelease {
				t.Errorf("IsPrerelease() = %v, want %v", v.IsPrerelease(), tt.prerelease)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // in the message, after the quoted input
	}{
		{"", "empty"},
		{"latest", "pin one"},
		{"LATEST", "pin one"},
		{"stable", "starts with a number"},
		{"v", "starts with a number"},
		{"vv1.2", "starts with a number"},
		{"1..2", "empty release segment"},
		{"1.2.", "empty release segment"},
		{".1.2", "starts with a number"},
		{"1.2.x", `release segment "x" is not a number`},
		{"1.2.3rc1", `release segment "3rc1" is not a number`},
		{"1.2.3.4.5", "at most 4"},
		{"1.2.3 ", "whitespace"},
		{"16.7.10 -ce.0", "whitespace"},
		{"1.2.3\t", "whitespace"},
		{"1.2.3-", "empty suffix"},
		{"1.2.3-rc..1", "empty identifier"},
		{"1.2.3--1", "empty identifier"},
		{"1.2.3-rc.", "empty identifier"},
		{"1.2.3-rc_1", "only letters, digits"},
		{"1.2.3~rc1", `release segment "3~rc1" is not a number`},
		{"1.2.3+", "empty build metadata"},
		{"1.2.3+a..b", "empty identifier in build metadata"},
		{"1.2.3+a+b", "only letters, digits"},
		{"1.2.3-é", "only letters, digits"},
		{strings.Repeat("1", 129), "longer than 128"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tt.in, v)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Input != tt.in {
				t.Fatalf("error %v (%T) is not a *ParseError with Input %q", err, err, tt.in)
			}
			msg := err.Error()
			if len(tt.in) <= maxVersionLen && !strings.Contains(msg, strconv.Quote(tt.in)) {
				t.Errorf("message %q does not name the input", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
			if !v.IsZero() {
				t.Errorf("got %v with the error, want the zero Version", v)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		// Releases: numeric, not lexical.
		{"16.7.10-ce.0", "16.11.10-ce.0", -1},
		{"1.9", "1.10", -1},
		{"1.2.10", "1.2.9", 1},
		{"2", "1.99.99", 1},
		{"18446744073709551616", "18446744073709551615", 1},
		// Missing segments are 0; the leading v and leading zeros do not count.
		{"1.2", "1.2.0", 0},
		{"1", "1.0.0.0", 0},
		{"1.2.0.1", "1.2", 1},
		{"v1.2.3", "1.2.3", 0},
		{"1.02.3", "1.2.3", 0},
		// Pre-releases come before the release (SemVer §11.3).
		{"v2.0.0-rc1", "v2.0.0-rc10", -1},
		{"v2.0.0-rc10", "v2.0.0", -1},
		{"v2.0.0-rc1", "v2.0.0", -1},
		{"2.0.0-rc9", "2.0.0-rc10", -1},
		{"2.0.0-rc.1", "2.0.0-rc1", 0},
		{"2.0.0-rc-1", "2.0.0-RC1", 0},
		{"1.0.0-beta-2", "1.0.0-beta.11", -1},
		{"2.0.0-rc1", "1.9.9", 1},
		{"2.0.0-rc1", "2.0.0-ce.0", -1},
		{"2.0.0-rc1", "2.0.0-1", -1},
		// SemVer §11.4 example chain.
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1},
		{"1.0.0-alpha.beta", "1.0.0-beta", -1},
		{"1.0.0-beta", "1.0.0-beta.2", -1},
		{"1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"1.0.0-beta.11", "1.0.0-rc.1", -1},
		{"1.0.0-rc.1", "1.0.0", -1},
		// Words compare lexically, as in SemVer.
		{"1.0.0-dev", "1.0.0-rc1", -1},
		{"1.0.0-beta", "1.0.0-dev", -1},
		{"1.0-SNAPSHOT", "1.0", -1},
		{"5.3.0-M1", "5.3.0-M2", -1},
		// Build metadata is ignored (SemVer §10).
		{"1.0.0+build.1", "1.0.0+build.2", 0},
		{"1.0.0-rc.1+b", "1.0.0-rc.1", 0},
		// Revisions: GitLab and Debian.
		{"16.7.10-ce.0", "16.7.10-ce.1", -1},
		{"16.7.10-ce.0", "16.7.10", 0},
		{"16.7.10-ce", "16.7.10-ce.0", 0},
		{"16.7.10-ce.0", "16.7.10-ee.0", 0}, // same release, other edition
		{"16.7.10-ce.1", "16.7.10-ee.0", 1},
		{"16.7.10-ce.0", "16.7.9-ce.5", 1},
		{"2.4.1-1", "2.4.1-2", -1},
		{"2.4.1-2", "2.4.1-10", -1},
		{"2.4.1", "2.4.1-1", -1},
		{"2.4.1-1", "2.4.1-1ubuntu2", -1},
		{"2.4.1-1ubuntu2", "2.4.1-1ubuntu10", -1},
		{"2.4.1-1ubuntu2", "2.4.1-2", -1},
		{"2.4.1-1.1", "2.4.1-1", 1},
		{"2.4.2-1", "2.4.1-9", 1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			a, b := MustParse(tt.a), MustParse(tt.b)
			if got := Compare(a, b); got != tt.want {
				t.Errorf("Compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := Compare(b, a); got != -tt.want {
				t.Errorf("Compare(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

// TestCompareSorts checks that sorting by Compare gives the expected total
// order over a mixed list.
func TestCompareSorts(t *testing.T) {
	want := []string{
		"1.9.0", "1.10.0-alpha", "1.10.0-rc1", "1.10.0-rc2", "1.10.0-rc10",
		"1.10.0", "1.10.0-1", "1.10.0-ce.2", "1.10.0-10", "1.10.1", "16.7.10-ce.0", "16.11.10-ce.0",
	}
	vs := make([]Version, len(want))
	for i, s := range want {
		vs[len(want)-1-i] = MustParse(s)
	}
	slices.SortStableFunc(vs, Compare)
	var got []string
	for _, v := range vs {
		got = append(got, v.String())
	}
	if !slices.Equal(got, want) {
		t.Errorf("sorted:\n got %v\nwant %v", got, want)
	}
}

func TestVersionText(t *testing.T) {
	var got struct {
		V Version `json:"v"`
	}
	if err := json.Unmarshal([]byte(`{"v":"16.7.10-ce.0"}`), &got); err != nil {
		t.Fatal(err)
	}
	if got.V.String() != "16.7.10-ce.0" || got.V.Edition() != "ce" {
		t.Errorf("decoded %q (edition %q)", got.V, got.V.Edition())
	}
	out, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"v":"16.7.10-ce.0"}` {
		t.Errorf("encoded %s", out)
	}
	err = json.Unmarshal([]byte(`{"v":"latest"}`), &got)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Errorf("decoding latest: %v, want a *ParseError", err)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse(\"1..2\") did not panic")
		}
	}()
	MustParse("1..2")
}

// FuzzParse checks that Parse never panics, that String
// returns the input, that Compare is reflexive and antisymmetric, and
// that a parsed version's text parses to an equal version.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"1.2.3", "v2.0.0-rc1", "v2.0.0-rc10", "16.7.10-ce.0", "16.11.10-ee.1", "1.2", "1.2.0",
		"2.4.1-1ubuntu2", "1.0.0-alpha.beta+build.7", "1.25-alpine", "latest", "", "1..2", "1.2.x",
		"5.3.0-M1", "1.0-SNAPSHOT", "007.0", "1.2.3-rc..1", "1.2.3+",
	} {
		f.Add(s, "1.2.3-rc.1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, erra := Parse(a)
		vb, errb := Parse(b)
		for _, c := range []struct {
			in  string
			v   Version
			err error
		}{{a, va, erra}, {b, vb, errb}} {
			if c.err != nil {
				var pe *ParseError
				if !errors.As(c.err, &pe) || pe.Input != c.in || !c.v.IsZero() {
					t.Fatalf("Parse(%q): error %v with %v", c.in, c.err, c.v)
				}
				continue
			}
			if c.v.String() != c.in {
				t.Fatalf("Parse(%q).String() = %q", c.in, c.v.String())
			}
			if Compare(c.v, c.v) != 0 {
				t.Fatalf("Compare(%q, itself) != 0", c.in)
			}
			again, err := Parse(c.v.String())
			if err != nil || Compare(again, c.v) != 0 {
				t.Fatalf("reparsing %q: %v, compare %d", c.in, err, Compare(again, c.v))
			}
		}
		if erra == nil && errb == nil {
			if ab, ba := Compare(va, vb), Compare(vb, va); ab != -ba {
				t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
			}
		}
	})
}
