package execx

import (
	"context"
	"testing"
	"time"
)

// TestStartTailAfterExit: the last lines of a command that wrote more
// than the pipe holds and exited are in Tail after Stop (Stop does not
// drop what is still in the pipe).
func TestStartTailAfterExit(t *testing.T) {
	b, err := Start(context.Background(), Cmd{Name: "/bin/sh", Args: []string{"-c", "seq 1 200000; echo last line; exit 3"}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	<-b.Exited()
	if err := b.Stop(time.Minute); err != nil {
		t.Fatal(err)
	}
	if tail := b.Tail(); len(tail) != 3 || tail[2] != "last line" {
		t.Fatalf("tail %q", tail)
	}
}
