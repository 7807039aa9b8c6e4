package lab

import (
	"strings"
	"testing"
)

// TestMergeExpansion checks that merge keys and aliases, each fanning out
// to ten more, are refused once they expand past maxSteps nodes (here
// 10^9) rather than decoded for ever.
func TestMergeExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("x0: &m0 {url: /r}\n")
	for i := 1; i <= 9; i++ {
		b.WriteString("x" + string(rune('0'+i)) + ": &m" + string(rune('0'+i)) + " {<<: [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*m" + string(rune('0'+i-1)))
		}
		b.WriteString("]}\n")
	}
	b.WriteString("repositories: {r: *m9}\n")
	_, err := Parse("lab.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "aliases and merge keys expand to more than") {
		t.Fatalf("error = %v", err)
	}
}
