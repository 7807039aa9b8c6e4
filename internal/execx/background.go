package execx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Background is a command started by Start that runs beside homelab (an
// application started for a drill) until it exits by itself or Stop ends
// its process group.
type Background struct {
	cmd     *exec.Cmd
	pgid    int
	read    *os.File
	lines   int
	red     func(string) string
	exited  chan struct{}
	waitErr error
	readers sync.WaitGroup

	mu    sync.Mutex
	tail  []string
	times []int // how many times in a row each line of tail came
}

// Start starts c in its own process group and returns at once. Its
// stdout and stderr go into one pipe whose last lines (at most lines,
// each cut to 200 bytes, with c.Secrets redacted, repeats counted) Tail
// returns; a daemon
// the command leaves in the background may keep writing to it. The
// started process (not the rest of its group: what it left in the
// background survives a killed homelab) gets SIGTERM when homelab dies
// (Pdeathsig, see Run). c's
// Stdout, OnStdout, OnStderr, GracePeriod and OutlivesHomelab are not
// used. ctx only adds its mark (WithMark) to the environment: the caller
// ends the command with Stop.
func Start(ctx context.Context, c Cmd, lines int) (*Background, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Name, c.Args...)
	cmd.Env = append(append(BaseEnv(), MarkEnv(ctx)...), c.Env...)
	cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Dir, c.Stdin, w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	err = cmd.Start()
	w.Close() // the child holds its own copy
	if err != nil {
		r.Close()
		return nil, &CmdError{Cmd: redactor(c.Secrets)(strings.Join(append([]string{c.Name}, c.Args...), " ")), ExitCode: -1, Err: err}
	}
	b := &Background{cmd: cmd, pgid: cmd.Process.Pid, read: r, lines: lines, red: redactor(c.Secrets), exited: make(chan struct{})}
	b.readers.Add(1)
	go b.readOutput()
	go func() {
		b.waitErr = cmd.Wait()
		close(b.exited)
	}()
	return b, nil
}

func (b *Background) readOutput() {
	defer b.readers.Done()
	// Read to the end whatever the lines' length: a command whose output
	// is no longer read blocks once the pipe is full. Of a line longer
	// than the buffer only its start is kept (a line shows 200 bytes).
	rd := bufio.NewReaderSize(b.read, 64*1024)
	for {
		raw, err := rd.ReadSlice('\n')
		text := string(raw)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = rd.ReadSlice('\n') // the rest of the line
		}
		b.add(text)
		if err != nil {
			return
		}
	}
}

// add records one line of output in the tail.
func (b *Background) add(raw string) {
	line := strings.TrimRight(b.red(strings.TrimSuffix(raw, "\n")), " \t\r")
	if line == "" {
		return
	}
	if len(line) > 200 {
		line = line[:199] + "…"
	}
	b.mu.Lock()
	if n := len(b.tail); n > 0 && b.tail[n-1] == line {
		b.times[n-1]++
	} else {
		b.tail, b.times = append(b.tail, line), append(b.times, 1)
		if len(b.tail) > b.lines {
			b.tail, b.times = b.tail[1:], b.times[1:]
		}
	}
	b.mu.Unlock()
}

// Exited is closed when the started process (not what it left in the
// background) has exited.
func (b *Background) Exited() <-chan struct{} { return b.exited }

// ExitErr is the started process's exit (nil for status 0) once Exited
// is closed.
func (b *Background) ExitErr() error {
	<-b.exited
	return b.waitErr
}

// Tail returns the last lines of the output so far, oldest first; a
// line repeated in a row is one line with " (×N)" after it.
func (b *Background) Tail() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, len(b.tail))
	for i, l := range b.tail {
		out[i] = l
		if b.times[i] > 1 {
			out[i] += fmt.Sprintf(" (×%d)", b.times[i])
		}
	}
	return out
}

// Stop ends the process group: SIGTERM, then SIGKILL when a process of
// the group is still there after grace. It returns once no process of the
// group is left (zombies aside) and the output is read, or with an error
// when one survives SIGKILL for 5 seconds. A process that left the group
// (setsid) is not reached: that is what a stop command is for.
func (b *Background) Stop(grace time.Duration) error {
	defer func() {
		b.drain()
		b.read.Close() // a process outside the group may hold the pipe
		b.readers.Wait()
	}()
	if !GroupAlive(b.pgid) {
		<-b.exited
		return nil
	}
	syscall.Kill(-b.pgid, syscall.SIGTERM)
	if awaitGroupGone(b.pgid, grace) {
		<-b.exited
		return nil
	}
	syscall.Kill(-b.pgid, syscall.SIGKILL)
	if awaitGroupGone(b.pgid, 5*time.Second) {
		<-b.exited
		return nil
	}
	return fmt.Errorf("process group %d still has processes after SIGKILL", b.pgid)
}

// drain waits (looking every 10 ms, for at most 5 s: a process that left
// the group may keep writing) until the output reader has taken all that
// is in the pipe (FIONREAD, Linux TIOCINQ), which once the group is gone holds its last
// lines: closing the pipe before would drop them.
func (b *Background) drain() {
	raw, err := b.read.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		if err := raw.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil || n == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitGroupGone polls (every 20 ms) until GroupAlive(pgid) is false or
// limit has passed; it reports whether the group is gone.
func awaitGroupGone(pgid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for GroupAlive(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// GroupAlive reports whether a process of process group pgid is alive
// (a zombie, exited but not reaped by its parent, does not count), by
// /proc.
func GroupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	procs, err := procfs.AllProcs()
	if err != nil {
		return true
	}
	for _, p := range procs {
		if st, err := p.Stat(); err == nil && st.PGRP == pgid && st.State != "Z" {
			return true
		}
	}
	return false
}
