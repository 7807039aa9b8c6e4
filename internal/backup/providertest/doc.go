// Package providertest is the conformance suite for backup.Provider
// implementations (DESIGN.md, "The provider contract"). Each provider's
// tests call Run with a Harness that builds the provider and its source
// data:
//
//	func TestProvider(t *testing.T) {
//		providertest.Run(t, providertest.Harness{
//			Kinds:    []providertest.RepoKind{providertest.Local, providertest.S3},
//			Commands: []string{"pg_dump", "pg_restore"},
//			New:      func(t *testing.T, stateDir string) (backup.Provider, providertest.Source) { ... },
//		})
//	}
//
// Every case runs against each storage kind the provider supports: a
// restic repository (Local, a directory; S3, a bucket on a throwaway S3
// server), or the storage of a provider that keeps its snapshots
// elsewhere, defined with its tests as a RepoKind whose Repo places it in
// the target and says how its own tool lists, damages and locks it (a
// pgBackRest repository; an s3-mirror destination bucket). Each case runs
// through a backup.Manager over a real SQLite catalog, after the
// provider's Setup when it has one: backup, list and restore (also after
// the source changed, by a prefix, and in place, or the provider's
// refusal of in place changing nothing); a restore drill that passes, and
// one whose check fails; retention, with the newest drilled snapshot
// protected (and, for restic, as restic forget answers it), and a prune
// after which the kept snapshots still restore; a failing source that
// leaves no snapshot and the earlier ones intact; a damaged storage
// failing the drill; a backup cancelled midway recorded as interrupted,
// leaving no snapshot and no held lock; and no secret (repository
// password, cipher passphrase, S3 keys, the source's passwords) in the
// argv of any process the cases started, which shims in front of restic,
// of RepoKind.Commands and of Harness.Commands record, nor in any error
// or catalog row.
//
// The suite never asserts a duration: an RTO must only be non-zero, and
// the cancellation waits for the provider's first progress report or the
// harness's signal that the backup is stuck, not a timer. It is imported
// by tests only.
package providertest
