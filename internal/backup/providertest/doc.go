// Package providertest is the conformance suite for backup.Provider
// implementations (DESIGN.md, "The provider contract"). Each provider's
// tests call Run with a Harness that builds the provider and its source
// data:
//
//	func TestProvider(t *testing.T) {
//		providertest.Run(t, providertest.Harness{
//			Kinds:    []providertest.RepoKind{providertest.Local, providertest.S3},
//			Commands: []string{"pg_dump", "pg_restore"},
//			New:      func(t *testing.T) (backup.Provider, providertest.Source) { ... },
//		})
//	}
//
// Every case runs against each repository kind the provider supports
// (Local, a directory; S3, a bucket on a throwaway S3 server),
// through a backup.Manager over a real SQLite catalog and the real restic:
// backup, list and restore (also after the source changed, and in place);
// a restore drill that passes, and one whose check fails; retention as
// restic forget answers it, with the newest drilled snapshot protected,
// and a prune after which the kept snapshots still restore; a failing
// source that leaves no snapshot and the earlier ones intact; a damaged
// repository failing the drill; a backup cancelled midway recorded as
// interrupted; and no secret (repository password, the source's
// passwords) in the argv of any process the cases started, which shims
// in front of restic and of Harness.Commands record.
//
// The suite never asserts a duration: an RTO must only be non-zero, and
// the cancellation waits for restic's first status line, not a timer.
// It is imported by tests only.
package providertest
