package e2etest

import (
	"regexp"
	"strings"
	"testing"
)

// MatchLines checks that text has a line matching each pattern (a
// regexp), in the order given: each after the line matching the pattern
// before. what names text in the error.
func MatchLines(t testing.TB, what, text string, patterns ...string) {
	t.Helper()
	lines := strings.Split(text, "\n")
	i := 0
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Errorf("%s has no line matching %q (after the lines before it) in:\n%s", what, p, text)
			return
		}
		i++
	}
}
