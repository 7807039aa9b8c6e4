package lab

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fuzzSeeds are inputs that once crashed or misled the loader (issue 12),
// and what the fuzzer found since. Every `go test` runs them.
var fuzzSeeds = []string{
	// Time zone prefixes without a schedule panicked robfig/cron.
	"backups: {b: {schedule: \"TZ=\"}}\n",
	"backups: {b: {schedule: \"CRON_TZ=\"}}\n",
	"backups: {b: {schedule: \"TZ=Europe/Paris\"}}\n",
	"backups: {b: {drill: {schedule: \"CRON_TZ=Europe/Paris\"}}}\n",
	"repositories: {r: {check: {schedule: \"CRON_TZ=Europe/Paris\\t0 2 * * *\"}}}\n",
	// A mapping merging itself overflowed the stack.
	"repositories:\n  local: &r {url: /x, <<: *r}\n",
	"repositories:\n  local: &r {url: /x, <<: [{<<: *r}]}\n",
	// Aliases of merges of aliases expand exponentially.
	"a: &a {url: /x}\nb: &b {<<: [*a, *a, *a, *a]}\nc: &c {<<: [*b, *b, *b, *b]}\nrepositories: {r: *c, s: *c}\n",
	// Errors without a line, or the wrong one.
	"name: dev\xfflab\n",
	"name: \"dev\x01lab\"\n",
	"\xff\xfen\x00a\x00m\x00e\x00",
	"backups:\n  docs: *base\n",
	"name: \"devlab\n",
	"name: devlab\nstate_dir: /s\nservices:\n  gitlab: [1, 2\nbackups: {}\n",
	"a: b: c",
	// Accepted and should not be.
	"backups: {b: {schedule: \"@every 0s\"}}\n",
	"backups: {b: {schedule: \"@every -5m\"}}\n",
	"repositories: {r: {url: \"rest:http://user:pw@host/\", password_env: P}}\n",
}

// FuzzLoad checks that the lab loader never panics, and that every
// problem it reports names the file and a line in it, in order, the same
// way every time. Run it with bench/fuzz-lab.sh.
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse("lab.yaml", data)
		if err == nil {
			if l == nil {
				t.Fatal("no lab and no error")
			}
			return
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) == 0 {
			t.Fatalf("error %v is not a *Errors with problems", err)
		}
		if errors.Is(err, errInternal) {
			t.Fatalf("%v\n%v", err, errs.List[0].Err)
		}
		lines := lineCount(data)
		for _, fe := range errs.List {
			if fe.File != "lab.yaml" || (len(data) <= MaxFileSize && (fe.Line < 1 || fe.Line > lines)) {
				t.Errorf("%q: no file or line in 1..%d", fe.Error(), lines)
			}
		}
		if !slices.IsSortedFunc(errs.List, func(a, b FieldError) int { return a.Line - b.Line }) {
			t.Errorf("not sorted by line:\n%v", err)
		}
		if _, again := Parse("lab.yaml", data); again == nil || again.Error() != err.Error() {
			t.Errorf("a second Parse gave\n%v\nthe first\n%v", again, err)
		}
	})
}
