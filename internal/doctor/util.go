package doctor

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
)

var errNotAuto = errors.New("doctor applies no fix for this finding: run the command it names")

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// list joins up to max names, saying how many more there are.
func list(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:max], ", ") + ", and " + strconv.Itoa(len(names)-max) + " more"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return strconv.Itoa(n) + " " + one
	}
	return strconv.Itoa(n) + " " + many
}
