// Package lock provides per-target exclusive locks shared by every homelab
// process on a host, so that a scheduled backup and an operator's restore
// of the same target never run at once.
//
// A lock is an flock(2) on <stateDir>/locks/<name>.lock (github.com/gofrs/flock).
// The kernel drops it when the holder exits, however it exits, so a crash
// never leaves a target locked. While held, the file names the holder (pid,
// start time, command line) so that a refused caller can say who is in the
// way: see [BusyError].
package lock
