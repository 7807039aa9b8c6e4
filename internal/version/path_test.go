package version

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func versions(ss ...string) []Version {
	var vs []Version
	for _, s := range ss {
		vs = append(vs, MustParse(s))
	}
	return vs
}

func texts(vs []Version) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

func TestPath(t *testing.T) {
	tests := []struct {
		name            string
		current, target string
		stops           []string
		opts            PathOptions
		want            []string
		wantIs          error  // errors.Is
		wantMsg         string // in the message
	}{
		{
			name:    "no stops",
			current: "1.2.3", target: "1.4.0",
			want: []string{"1.4.0"},
		},
		{
			name:    "stops below and above the range are dropped",
			current: "16.3.9-ce.0", target: "16.7.10-ce.0",
			stops: []string{"15.11.13-ce.0", "16.11.10-ce.0"},
			want:  []string{"16.7.10-ce.0"},
		},
		{
			name:    "stops between, ascending",
			current: "16.1.0-ce.0", target: "17.0.0-ce.0",
			stops: []string{"16.3.9-ce.0", "16.7.10-ce.0", "16.11.10-ce.0"},
			want:  []string{"16.3.9-ce.0", "16.7.10-ce.0", "16.11.10-ce.0", "17.0.0-ce.0"},
		},
		{
			name:    "numeric order, not lexical",
			current: "16.1.0", target: "17.0.0",
			stops: []string{"16.11.10", "16.7.10", "16.3.9"},
			want:  []string{"16.3.9", "16.7.10", "16.11.10", "17.0.0"},
		},
		{
			name:    "unsorted and duplicate stops; the first of equals is kept",
			current: "1.0.0", target: "3.0.0",
			stops: []string{"2.5.0", "1.5.0", "2.5.0", "v1.5", "1.5.0", "2.5.0-0"},
			want:  []string{"1.5.0", "2.5.0", "3.0.0"},
		},
		{
			name:    "a stop equal to the target is the target",
			current: "16.3.9-ce.0", target: "16.7.10-ce.0",
			stops: []string{"16.7.10-ce.0", "16.7.10"},
			want:  []string{"16.7.10-ce.0"},
		},
		{
			name:    "a stop equal to the current version is dropped",
			current: "16.3.9-ce.0", target: "16.11.10-ce.0",
			stops: []string{"16.3.9", "16.7.10-ce.0"},
			want:  []string{"16.7.10-ce.0", "16.11.10-ce.0"},
		},
		{
			name:    "a newer package revision of the same release is an upgrade",
			current: "16.7.10-ce.0", target: "16.7.10-ce.1",
			want: []string{"16.7.10-ce.1"},
		},
		{
			name:    "Debian revisions",
			current: "2.4.1-1", target: "2.4.2-1",
			stops: []string{"2.4.1-2", "2.4.1-1", "2.4.2-2"},
			want:  []string{"2.4.1-2", "2.4.2-1"},
		},
		{
			name:    "pre-release stops and targets",
			current: "v1.9.0", target: "v2.0.0",
			stops: []string{"v2.0.0-rc10", "v2.0.0-rc1"},
			want:  []string{"v2.0.0-rc1", "v2.0.0-rc10", "v2.0.0"},
		},
		{
			name:    "to a pre-release, the release itself is past it",
			current: "1.9.0", target: "2.0.0-rc1",
			stops: []string{"2.0.0", "1.9.5"},
			want:  []string{"1.9.5", "2.0.0-rc1"},
		},
		{
			name:    "bare stops and versions match any edition",
			current: "16.1.0", target: "17.0.0-ce.0",
			stops: []string{"16.3.9", "16.7.10-ce.0"},
			want:  []string{"16.3.9", "16.7.10-ce.0", "17.0.0-ce.0"},
		},
		{
			name:    "same version",
			current: "16.7.10-ce.0", target: "16.7.10-ce.0",
			wantIs: ErrAlreadyAt, wantMsg: "running 16.7.10-ce.0, target 16.7.10-ce.0",
		},
		{
			name:    "same version written differently",
			current: "16.7.10-ce.0", target: "16.7.10",
			wantIs: ErrAlreadyAt,
		},
		{
			name:    "downgrade refused",
			current: "17.0.0-ce.0", target: "16.11.10-ce.0",
			stops:  []string{"16.7.10-ce.0"},
			wantIs: ErrDowngrade, wantMsg: "from 17.0.0-ce.0 to 16.11.10-ce.0",
		},
		{
			name:    "downgrade to the pre-release of the running version refused",
			current: "2.0.0", target: "2.0.0-rc1",
			wantIs: ErrDowngrade,
		},
		{
			name:    "downgrade allowed goes straight back, without stops",
			current: "17.0.0-ce.0", target: "16.3.9-ce.0",
			stops: []string{"16.7.10-ce.0", "16.11.10-ce.0"},
			opts:  PathOptions{AllowDowngrade: true},
			want:  []string{"16.3.9-ce.0"},
		},
		{
			name:    "allow-downgrade changes nothing for an upgrade",
			current: "16.3.9-ce.0", target: "16.11.10-ce.0",
			stops: []string{"16.7.10-ce.0"},
			opts:  PathOptions{AllowDowngrade: true},
			want:  []string{"16.7.10-ce.0", "16.11.10-ce.0"},
		},
		{
			name:    "edition mismatch ce to ee",
			current: "16.7.10-ce.0", target: "17.0.0-ee.0",
			wantIs: ErrEditionMismatch, wantMsg: "product migration",
		},
		{
			name:    "edition mismatch is refused even for the same release",
			current: "16.7.10-ce.0", target: "16.7.10-ee.0",
			wantIs: ErrEditionMismatch,
		},
		{
			name:    "edition mismatch is refused even with allow-downgrade",
			current: "17.0.0-ee.0", target: "16.7.10-ce.0",
			opts:   PathOptions{AllowDowngrade: true},
			wantIs: ErrEditionMismatch,
		},
		{
			name:    "a stop of another edition",
			current: "16.1.0-ce.0", target: "17.0.0-ce.0",
			stops:  []string{"16.3.9-ce.0", "16.7.10-ee.0"},
			wantIs: ErrEditionMismatch, wantMsg: "required stop 16.7.10-ee.0 is edition ee",
		},
		{
			name:    "a stop of another edition outside the range",
			current: "16.1.0-ce.0", target: "16.3.9-ce.0",
			stops:  []string{"16.11.10-ee.0"},
			wantIs: ErrEditionMismatch,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current, target := MustParse(tt.current), MustParse(tt.target)
			got, err := Path(current, target, versions(tt.stops...), tt.opts)
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("Path = %v, %v; want an error matching %v", texts(got), err, tt.wantIs)
				}
				if got != nil {
					t.Errorf("got path %v with the error", texts(got))
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("message %q does not contain %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Path: %v", err)
			}
			if !slices.Equal(texts(got), tt.want) {
				t.Errorf("Path =\n %v\nwant\n %v", texts(got), tt.want)
			}
		})
	}
}

func TestPathErrorTypes(t *testing.T) {
	v := MustParse
	_, err := Path(v("17.0.0-ce.0"), v("16.11.10-ce.0"), nil, PathOptions{})
	var de *DowngradeError
	if !errors.As(err, &de) || de.Current.String() != "17.0.0-ce.0" || de.Target.String() != "16.11.10-ce.0" {
		t.Errorf("downgrade: %v (%T), want a *DowngradeError with both versions", err, err)
	}
	if !strings.Contains(err.Error(), "--allow-downgrade") {
		t.Errorf("downgrade message %q does not mention --allow-downgrade", err)
	}

	_, err = Path(v("16.7.10-ce.0"), v("17.0.0-ee.0"), nil, PathOptions{})
	var ee *EditionError
	if !errors.As(err, &ee) || ee.Stop || ee.Other.String() != "16.7.10-ce.0" || ee.Target.String() != "17.0.0-ee.0" {
		t.Errorf("edition: %v (%+v), want an *EditionError for the current version", err, ee)
	}

	_, err = Path(v("16.1.0-ee.0"), v("17.0.0-ee.0"), versions("16.7.10-ce.0"), PathOptions{})
	if !errors.As(err, &ee) || !ee.Stop || ee.Other.String() != "16.7.10-ce.0" {
		t.Errorf("edition of a stop: %v (%+v), want an *EditionError for the stop", err, ee)
	}

	for _, c := range [][2]Version{{{}, v("1.0")}, {v("1.0"), {}}} {
		if _, err := Path(c[0], c[1], nil, PathOptions{}); err == nil || !strings.Contains(err.Error(), "must both be set") {
			t.Errorf("Path(%q, %q): %v, want an error for the zero Version", c[0], c[1], err)
		}
	}
}

// TestPathDoesNotModifyStops checks that Path leaves its stops argument
// as it was (sorting happens on a copy).
func TestPathDoesNotModifyStops(t *testing.T) {
	stops := versions("3.0.0", "2.0.0", "2.0.0", "5.0.0")
	before := texts(stops)
	if _, err := Path(MustParse("1.0.0"), MustParse("4.0.0"), stops, PathOptions{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(texts(stops), before) {
		t.Errorf("stops changed to %v, were %v", texts(stops), before)
	}
}

// FuzzPath checks Path's promises on any versions: on success the path is
// strictly ascending, ends with the target, and every other element is a
// given stop strictly between current and target; a refusal is one of the
// documented errors. It also checks that Compare is transitive.
func FuzzPath(f *testing.F) {
	f.Add("16.1.0-ce.0", "17.0.0-ce.0", "16.3.9-ce.0,16.7.10,16.11.10-ce.0,16.7.10-ce.0,15.0.5", false)
	f.Add("v2.0.0-rc1", "v2.0.0", "v2.0.0-rc10,2.0.0-rc2,2.0.0", false)
	f.Add("2.4.1-2", "2.4.1-1", "2.4.1-1ubuntu2", true)
	f.Add("1.2", "1.2.0", "", false)
	f.Add("16.7.10-ce.0", "17.0.0-ee.0", "16.11.10", false)
	f.Fuzz(func(t *testing.T, cur, tgt, stopList string, allow bool) {
		current, err1 := Parse(cur)
		target, err2 := Parse(tgt)
		if err1 != nil || err2 != nil {
			return
		}
		var stops []Version
		for _, s := range strings.Split(stopList, ",") {
			if v, err := Parse(s); err == nil {
				stops = append(stops, v)
			}
		}
		for _, s := range stops {
			a, b, c := current, target, s
			if Compare(a, b) <= 0 && Compare(b, c) <= 0 && Compare(a, c) > 0 {
				t.Fatalf("not transitive: %s <= %s <= %s but %s > %s", a, b, c, a, c)
			}
		}
		path, err := Path(current, target, stops, PathOptions{AllowDowngrade: allow})
		if err != nil {
			if !errors.Is(err, ErrAlreadyAt) && !errors.Is(err, ErrDowngrade) && !errors.Is(err, ErrEditionMismatch) {
				t.Fatalf("Path: unexpected error %v", err)
			}
			return
		}
		if len(path) == 0 || path[len(path)-1].String() != target.String() {
			t.Fatalf("path %v does not end with %s", texts(path), target)
		}
		if Compare(target, current) < 0 {
			if len(path) != 1 {
				t.Fatalf("downgrade path %v has stops", texts(path))
			}
			return
		}
		prev := current
		for i, v := range path {
			if Compare(v, prev) <= 0 {
				t.Fatalf("path %v is not strictly ascending from %s at %d", texts(path), current, i)
			}
			prev = v
			if i < len(path)-1 && !slices.ContainsFunc(stops, func(s Version) bool { return s.String() == v.String() }) {
				t.Fatalf("path element %s is not a given stop", v)
			}
		}
	})
}
