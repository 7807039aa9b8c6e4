package cli

import (
	"bufio"
	"fmt"
	"strings"
)

// confirm asks on a terminal; off a terminal it requires --yes.
func confirm(io *IOStreams, yes bool, question string) error {
	if yes {
		return nil
	}
	if !io.StdinTTY {
		return usageErr("not a terminal: pass --yes to confirm (" + question + ")")
	}
	fmt.Fprintf(io.ErrOut, "%s [y/N] ", question)
	line, _ := bufio.NewReader(io.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return usageErr("not confirmed")
}
