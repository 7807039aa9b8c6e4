package e2etest

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"homelab/internal/cli"
)

// MinParallel is the -test.parallel that Main sets when the command line
// does not set one: the end-to-end tests and scripts mostly wait (on
// restic, PostgreSQL, Docker, health gates), so running more of them at
// once than there are cores (go test's default) shortens the run without
// loading the machine much more.
const MinParallel = 4

// Main is the TestMain of an end-to-end package: it runs the tests with
// `homelab` in PATH as this test binary, which runs cli.Main when started
// under that name (testscript.Main). So scripts' `exec homelab` and Go
// tests' exec.Command("homelab", ...) run the real CLI of this build,
// each in its own process.
func Main(m *testing.M) {
	testscript.Main(parallelM{m}, map[string]func(){
		"homelab": func() { os.Exit(cli.Main()) },
	})
}

// parallelM raises -test.parallel to at least MinParallel unless it was
// given. Its Run is called only in the test process itself, never when
// the binary runs as homelab (whose arguments are not test flags).
type parallelM struct{ m *testing.M }

func (p parallelM) Run() int {
	if !flag.Parsed() {
		flag.Parse()
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set && runtime.GOMAXPROCS(0) < MinParallel {
		flag.Set("test.parallel", strconv.Itoa(MinParallel))
	}
	return p.m.Run()
}
