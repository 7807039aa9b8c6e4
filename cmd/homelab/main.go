// Command homelab runs the day-2 operations of a self-hosted stack.
package main

import (
	"os"

	"homelab/internal/cli"
)

func main() { os.Exit(cli.Main()) }
