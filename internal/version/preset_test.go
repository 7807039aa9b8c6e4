package version

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func gitlabPreset(t *testing.T) Preset {
	t.Helper()
	p, ok := LookupPreset("gitlab")
	if !ok {
		t.Fatal(`LookupPreset("gitlab"): not found`)
	}
	return p
}

// resolve is what the upgrade command does: the preset's stops for this
// upgrade, then Path over them and the lab file's own stops.
func resolve(p Preset, current, target Version, lab []Version, opts PathOptions) ([]Version, error) {
	fromPreset, err := p.StopsFor(current, target, lab)
	if err != nil {
		return nil, err
	}
	return Path(current, target, append(slices.Clone(lab), fromPreset...), opts)
}

// TestGitLabPresetTable checks the shape of the built-in table: ascending,
// bare releases with patch levels except the minor-only GitLab 18 stops,
// and inside [From, Before).
func TestGitLabPresetTable(t *testing.T) {
	p := gitlabPreset(t)
	if p.Name != "gitlab" || !strings.Contains(p.Source, "https://docs.gitlab.com/update/upgrade_paths/") {
		t.Errorf("Name %q, Source %q", p.Name, p.Source)
	}
	prev := p.From
	for _, s := range p.Stops {
		if Compare(s.Release, prev) <= 0 {
			t.Errorf("stop %s is not after %s", s.Release, prev)
		}
		prev = s.Release
		if s.Release.Edition() != "" || s.Release.IsPrerelease() || strings.ContainsAny(s.Release.String(), "-+v") {
			t.Errorf("stop %s is not a bare release", s.Release)
		}
		segs := strings.Count(s.Release.String(), ".") + 1
		if s.MinorOnly && segs != 2 || !s.MinorOnly && segs != 3 {
			t.Errorf("stop %s: %d segments with MinorOnly %v", s.Release, segs, s.MinorOnly)
		}
	}
	if Compare(prev, p.Before) >= 0 {
		t.Errorf("last stop %s is not before %s", prev, p.Before)
	}
	// The documented list, as the docs page gives it (GitLab 18 cycle).
	var got []string
	for _, s := range p.Stops {
		got = append(got, s.Release.String())
	}
	want := []string{
		"15.0.5", "15.1.6", "15.4.6", "15.11.13",
		"16.0.10", "16.1.8", "16.2.11", "16.3.9", "16.7.10", "16.11.10",
		"17.1.8", "17.3.7", "17.5.5", "17.8.7", "17.11.7",
		"18.2", "18.5", "18.8", "18.11",
	}
	if !slices.Equal(got, want) {
		t.Errorf("stops\n got %v\nwant %v", got, want)
	}
	var conditional []string
	for _, s := range p.Stops {
		if s.Condition != "" {
			conditional = append(conditional, s.Release.String())
		}
	}
	if want := []string{"15.1.6", "16.0.10", "16.1.8", "16.2.11", "17.1.8"}; !slices.Equal(conditional, want) {
		t.Errorf("conditional stops %v, want %v", conditional, want)
	}
}

func TestLookupPreset(t *testing.T) {
	if _, ok := LookupPreset("nope"); ok {
		t.Error(`LookupPreset("nope") found a preset`)
	}
	if got := PresetNames(); !slices.Equal(got, []string{"gitlab"}) {
		t.Errorf("PresetNames() = %v", got)
	}
	p := gitlabPreset(t)
	p.Stops[0].Release = MustParse("99.0.0")
	p.Stops = p.Stops[:1]
	if q := gitlabPreset(t); q.Stops[0].Release.String() != "15.0.5" || len(q.Stops) < 2 {
		t.Errorf("changing a looked-up preset changed the built-in one: %v", q.Stops[0].Release)
	}
	u := gitlabPreset(t).Unconditional()
	for _, s := range u.Stops {
		if s.Condition != "" {
			t.Errorf("Unconditional kept %s (%s)", s.Release, s.Condition)
		}
	}
	if q := gitlabPreset(t); len(q.Stops) == len(u.Stops) {
		t.Error("Unconditional removed nothing")
	}
}

func TestGitLabPresetPaths(t *testing.T) {
	tests := []struct {
		name            string
		current, target string
		lab             []string // the service's required_stops
		unconditional   bool
		want            []string
	}{
		{
			name:    "16.1 to 17.0, every documented stop",
			current: "16.1.0-ce.0", target: "17.0.0-ce.0",
			want: []string{"16.1.8-ce.0", "16.2.11-ce.0", "16.3.9-ce.0", "16.7.10-ce.0", "16.11.10-ce.0", "17.0.0-ce.0"},
		},
		{
			name:    "16.1 to 17.0, unconditional stops only",
			current: "16.1.0-ce.0", target: "17.0.0-ce.0", unconditional: true,
			want: []string{"16.3.9-ce.0", "16.7.10-ce.0", "16.11.10-ce.0", "17.0.0-ce.0"},
		},
		{
			name:    "enterprise edition tags",
			current: "16.1.0-ee.0", target: "17.0.0-ee.0", unconditional: true,
			want: []string{"16.3.9-ee.0", "16.7.10-ee.0", "16.11.10-ee.0", "17.0.0-ee.0"},
		},
		{
			name:    "bare versions give bare stops",
			current: "16.1.0", target: "17.0.0", unconditional: true,
			want: []string{"16.3.9", "16.7.10", "16.11.10", "17.0.0"},
		},
		{
			name:    "from the last GitLab 14 stop into GitLab 16",
			current: "14.10.5-ce.0", target: "16.0.0-ce.0",
			want: []string{"15.0.5-ce.0", "15.1.6-ce.0", "15.4.6-ce.0", "15.11.13-ce.0", "16.0.0-ce.0"},
		},
		{
			name:    "across GitLab 16 and 17",
			current: "15.11.13-ce.0", target: "17.11.7-ce.0", unconditional: true,
			want: []string{"16.3.9-ce.0", "16.7.10-ce.0", "16.11.10-ce.0", "17.3.7-ce.0", "17.5.5-ce.0", "17.8.7-ce.0", "17.11.7-ce.0"},
		},
		{
			name:    "target is a stop",
			current: "16.3.9-ce.0", target: "16.7.10-ce.0",
			want: []string{"16.7.10-ce.0"},
		},
		{
			name:    "current is a stop",
			current: "16.7.10-ce.0", target: "16.11.10-ce.0",
			want: []string{"16.11.10-ce.0"},
		},
		{
			name:    "target inside a stop's minor, before its patch",
			current: "16.6.0-ce.0", target: "16.7.5-ce.0",
			want: []string{"16.7.5-ce.0"},
		},
		{
			name:    "lab stops and preset stops together, deduplicated",
			current: "16.1.0-ce.0", target: "17.0.0-ce.0", unconditional: true,
			lab:  []string{"16.7.10-ce.0", "16.5.0-ce.0", "16.3.9-ce.0"},
			want: []string{"16.3.9-ce.0", "16.5.0-ce.0", "16.7.10-ce.0", "16.11.10-ce.0", "17.0.0-ce.0"},
		},
		{
			// 17.11.99 is a made-up later patch, standing for one the
			// docs had not named yet.
			name:    "a lab stop names a later patch of a documented stop",
			current: "17.10.0-ce.0", target: "18.1.0-ce.0",
			lab:  []string{"17.11.99-ce.0"},
			want: []string{"17.11.99-ce.0", "18.1.0-ce.0"},
		},
		{
			name:    "a lab stop older than the documented patch does not replace it",
			current: "17.10.0-ce.0", target: "18.1.0-ce.0",
			lab:  []string{"17.11.1-ce.0"},
			want: []string{"17.11.1-ce.0", "17.11.7-ce.0", "18.1.0-ce.0"},
		},
		{
			name:    "a later patch past the target does not replace the stop",
			current: "17.10.0-ce.0", target: "17.11.8-ce.0",
			lab:  []string{"17.11.99-ce.0"},
			want: []string{"17.11.7-ce.0", "17.11.8-ce.0"},
		},
		{
			// 18.2.99 and 18.5.99 are made-up pins; the docs give no
			// GitLab 18 patch levels.
			name:    "minor-only stops pinned by the lab file",
			current: "17.11.7-ce.0", target: "18.6.0-ce.0",
			lab:  []string{"18.5.99-ce.0", "18.2.98-ce.0", "18.2.99-ce.0"},
			want: []string{"18.2.98-ce.0", "18.2.99-ce.0", "18.5.99-ce.0", "18.6.0-ce.0"},
		},
		{
			name:    "minor-only stop: current already in that minor",
			current: "18.2.1-ce.0", target: "18.4.0-ce.0",
			want: []string{"18.4.0-ce.0"},
		},
		{
			name:    "minor-only stop: target inside that minor",
			current: "17.11.7-ce.0", target: "18.2.3-ce.0",
			want: []string{"18.2.3-ce.0"},
		},
		{
			name:    "up to the last covered minor",
			current: "18.8.1-ee.0", target: "18.12.0-ee.0",
			lab:  []string{"18.11.99-ee.0"},
			want: []string{"18.11.99-ee.0", "18.12.0-ee.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := gitlabPreset(t)
			if tt.unconditional {
				p = p.Unconditional()
			}
			got, err := resolve(p, MustParse(tt.current), MustParse(tt.target), versions(tt.lab...), PathOptions{})
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if !slices.Equal(texts(got), tt.want) {
				t.Errorf("path\n got %v\nwant %v", texts(got), tt.want)
			}
		})
	}
}

func TestGitLabPresetRefusals(t *testing.T) {
	tests := []struct {
		name            string
		current, target string
		lab             []string
		check           func(t *testing.T, err error)
	}{
		{
			name:    "a minor-only stop without a pin",
			current: "17.11.7-ce.0", target: "18.3.0-ce.0",
			check: func(t *testing.T, err error) {
				var ue *UnpinnedStopError
				if !errors.As(err, &ue) || !slices.Equal(ue.Minors, []string{"18.2"}) || ue.Example != "18.2.N-ce.0" {
					t.Fatalf("%v (%+v), want an *UnpinnedStopError for 18.2", err, ue)
				}
				for _, s := range []string{"17.11.7-ce.0", "18.3.0-ce.0", "18.2", "18.2.N-ce.0", "required_stops", "packages.gitlab.com"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("message %q does not contain %q", err, s)
					}
				}
			},
		},
		{
			name:    "several minor-only stops, one pinned",
			current: "17.11.7-ee.0", target: "18.9.0-ee.0",
			lab: []string{"18.5.99-ee.0"},
			check: func(t *testing.T, err error) {
				var ue *UnpinnedStopError
				if !errors.As(err, &ue) || !slices.Equal(ue.Minors, []string{"18.2", "18.8"}) || ue.Example != "18.2.N-ee.0" {
					t.Fatalf("%v (%+v), want an *UnpinnedStopError for 18.2 and 18.8", err, ue)
				}
			},
		},
		{
			name:    "a pin at x.y.0 pins the minor; one equal to the target does not count",
			current: "17.11.7-ce.0", target: "18.3.0-ce.0",
			lab: []string{"18.2.0-ce.0", "18.3.0-ce.0"},
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Fatalf("pinned by 18.2.0-ce.0: %v", err)
				}
			},
		},
		{
			name:    "current older than the list covers",
			current: "14.9.0-ce.0", target: "15.4.6-ce.0",
			check: func(t *testing.T, err error) {
				var re *PresetRangeError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), "complete only from 14.10.5") || !strings.Contains(err.Error(), "14.9.0-ce.0") {
					t.Fatalf("%v, want a *PresetRangeError naming 14.10.5 and 14.9.0-ce.0", err)
				}
			},
		},
		{
			name:    "target past the documented stops",
			current: "18.10.0-ce.0", target: "19.0.0-ce.0",
			check: func(t *testing.T, err error) {
				var re *PresetRangeError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), "19.0.0") {
					t.Fatalf("%v, want a *PresetRangeError naming 19.0.0", err)
				}
			},
		},
		{
			name:    "downgrade: no preset stops, Path refuses",
			current: "17.0.0-ce.0", target: "16.11.10-ce.0",
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrDowngrade) {
					t.Fatalf("%v, want ErrDowngrade", err)
				}
			},
		},
		{
			name:    "edition change: Path refuses",
			current: "16.1.0-ce.0", target: "17.0.0-ee.0",
			check: func(t *testing.T, err error) {
				if !errors.Is(err, ErrEditionMismatch) {
					t.Fatalf("%v, want ErrEditionMismatch", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolve(gitlabPreset(t), MustParse(tt.current), MustParse(tt.target), versions(tt.lab...), PathOptions{})
			tt.check(t, err)
		})
	}
}

func TestStopsForDowngradeAndSame(t *testing.T) {
	p := gitlabPreset(t)
	v := MustParse
	for _, c := range [][2]string{{"17.0.0-ce.0", "16.1.0-ce.0"}, {"16.7.10-ce.0", "16.7.10-ce.0"}, {"13.0.0", "12.0.0"}} {
		got, err := p.StopsFor(v(c[0]), v(c[1]), nil)
		if got != nil || err != nil {
			t.Errorf("StopsFor(%s, %s) = %v, %v; want nothing", c[0], c[1], texts(got), err)
		}
	}
}

// TestPresetWithoutSuffixOrRange checks a preset with only stops: no
// range checks, stops written as their bare release.
func TestPresetWithoutSuffixOrRange(t *testing.T) {
	p := Preset{Name: "plain", Stops: []Stop{{Release: MustParse("2.0.0")}, {Release: MustParse("3.1"), MinorOnly: true}}}
	got, err := p.StopsFor(MustParse("1.0.0-1"), MustParse("3.0.0-2"), nil)
	if err != nil || !slices.Equal(texts(got), []string{"2.0.0"}) {
		t.Errorf("StopsFor = %v, %v; want [2.0.0]", texts(got), err)
	}
	_, err = p.StopsFor(MustParse("1.0.0"), MustParse("4.0.0"), nil)
	var ue *UnpinnedStopError
	if !errors.As(err, &ue) || ue.Example != "3.1.N" {
		t.Errorf("StopsFor to 4.0.0: %v, want an *UnpinnedStopError for 3.1", err)
	}
}

func Example_gitlab() {
	gitlab, _ := LookupPreset("gitlab")
	current := MustParse("16.1.0-ce.0")
	target := MustParse("17.0.0-ce.0")
	var labStops []Version // the service's upgrade.required_stops

	fromPreset, err := gitlab.Unconditional().StopsFor(current, target, labStops)
	if err != nil {
		fmt.Println(err)
		return
	}
	path, err := Path(current, target, append(labStops, fromPreset...), PathOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(path)

	_, err = Path(target, current, nil, PathOptions{})
	fmt.Println(err)
	// Output:
	// [16.3.9-ce.0 16.7.10-ce.0 16.11.10-ce.0 17.0.0-ce.0]
	// refusing to downgrade from 17.0.0-ce.0 to 16.1.0-ce.0; pass --allow-downgrade to go back anyway (database migrations do not always run backwards: restoring the backup taken before the upgrade is the safe way back)
}
