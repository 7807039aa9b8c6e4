package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProcLocks is the kernel's table of file locks (proc(5)).
var ProcLocks = "/proc/locks"

// Held reports whether a process holds the lock called name under
// stateDir now, without taking it (a probe that took it, even for an
// instant, could make a real holder's Acquire fail): it looks the lock
// file's device and inode up among the FLOCK entries of /proc/locks
// (Linux). holder describes the holder as the lock file records it. A
// lock file that does not exist is not held.
func Held(stateDir, name string) (held bool, holder string, err error) {
	path := Path(stateDir, name)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, "", fmt.Errorf("lock %s: no inode", name)
	}
	f, err := os.Open(ProcLocks)
	if err != nil {
		return false, "", fmt.Errorf("lock %s: %w", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1438 fe:00:762141 0 EOF"; a blocked
		// waiter's line has "->" after the number and one more field.
		fields := strings.Fields(strings.Replace(sc.Text(), "->", "", 1))
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) != 3 {
			continue
		}
		major, err1 := strconv.ParseUint(dev[0], 16, 32)
		minor, err2 := strconv.ParseUint(dev[1], 16, 32)
		ino, err3 := strconv.ParseUint(dev[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || ino != st.Ino {
			continue
		}
		if uint64(major) == uint64(unixMajor(st.Dev)) && uint64(minor) == uint64(unixMinor(st.Dev)) {
			return true, readHolder(path), nil
		}
	}
	return false, "", sc.Err()
}

// unixMajor and unixMinor split a Linux dev_t (glibc's gnu_dev_major and
// gnu_dev_minor).
func unixMajor(dev uint64) uint32 {
	return uint32((dev>>8)&0xfff) | uint32((dev>>32)&0xfffff000)
}

func unixMinor(dev uint64) uint32 {
	return uint32(dev&0xff) | uint32((dev>>12)&0xffffff00)
}

// WaitReleased returns nil once no process holds the lock called name
// under stateDir (Held), polling every PollInterval and never taking it
// (so that a holder about to take it again is not made to fail), or
// ctx's error if ctx ends first. A lock whose state cannot be read counts
// as released: the caller's Acquire then says why.
func WaitReleased(ctx context.Context, stateDir, name string) error {
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		if held, _, err := Held(stateDir, name); err != nil || !held {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
