// Package testenv gives tests the real tools they run against: a restic
// binary of a usable version and a throwaway PostgreSQL cluster (initdb +
// pg_ctl on a free port, password authentication). When a tool is missing
// the test is skipped with the reason, except under CI=true, where it
// fails. It is imported by tests only.
package testenv
