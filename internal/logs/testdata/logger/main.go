// Command logger is the container of the compose tests. Started without
// arguments, it prints nothing and waits for SIGTERM or SIGINT. Run in the
// same container as `logger say [-stderr] LINE...` (docker compose exec),
// it writes each LINE to the main process's stdout (or stderr), which is
// what Docker keeps as the container's log: the tests decide exactly which
// lines the log holds and when.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "say" {
		fs := flag.NewFlagSet("say", flag.ExitOnError)
		stderr := fs.Bool("stderr", false, "write to the main process's stderr")
		fs.Parse(os.Args[2:])
		fd := "/proc/1/fd/1"
		if *stderr {
			fd = "/proc/1/fd/2"
		}
		f, err := os.OpenFile(fd, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "logger say:", err)
			os.Exit(1)
		}
		for _, line := range fs.Args() {
			if _, err := fmt.Fprintln(f, line); err != nil {
				fmt.Fprintln(os.Stderr, "logger say:", err)
				os.Exit(1)
			}
		}
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "logger say:", err)
			os.Exit(1)
		}
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
