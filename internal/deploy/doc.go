// Package deploy runs blue/green deploys and rollbacks of a service
// behind HAProxy (`homelab deploy`, `homelab rollback`) as sagas (package
// saga), journalled in the catalog like upgrades.
//
// A blue/green service (lab.Deploy) has two colors, blue and green, each
// with its own runtime, address and health probe. One is active: it is
// the one server line of the HAProxy backend that homelab writes. The
// catalog's newest deploy record (catalog.Deploys) says which, and the
// live configuration must agree before anything changes; with no record
// yet, the configuration's server is adopted.
//
// [Deployer.Plan] makes a plan (pure reads: the catalog, the HAProxy
// configuration, the idle color's state, the migrations) and refuses what
// must not run: an idle color that runs without homelab having left it
// there, a release whose migrations contract the schema (unless allowed,
// with a reason), the version already serving. [Deployer.Run] runs it:
//
//  0. "check FROM serves": under the saga's lock, what the plan was made
//     on still holds (From serves, the catalog and HAProxy agreeing; the
//     color to start is stopped or kept for a rollback; for a fast
//     rollback, To is still the kept color); otherwise a *RefusedError
//     and nothing changes. A plan outlives its lock while the operator
//     confirms or --wait waits for another deploy, which may have made
//     the color this plan would stop serve.
//  1. "start COLOR at V" (deploy, redeploy): stop the idle color, put it
//     on V (runtime.Versioner: set_version, or the compose image tag),
//     start it; undo: stop it.
//  2. "health gate COLOR" (deploy, redeploy): the color's own probe passes
//     within healthy_within; "check COLOR alive" (fast rollback): the kept
//     color runs and passes its probe now.
//  3. "flip haproxy to COLOR": the backend's server line rendered for
//     COLOR, checked by `haproxy -c`, swapped in atomically, HAProxy
//     reloaded (master-worker: no connection dropped); undo: the same for
//     the color that served before, then the public URL is awaited
//     answering its version again.
//  4. "verify public url at V": the public URL answers from V (the reload
//     is repeated while it does not: HAProxy's master ignores a reload
//     that arrives while it finishes the previous one).
//  5. "record COLOR active": the deploy record (who, where, reason, the
//     previous color kept for a fast rollback); undo: removed.
//
// A failure before the flip stops the new color and leaves traffic where
// it was; a failure after it (the public URL never answers from V) flips
// back. A crash anywhere leaves an unfinished saga that every command
// reports and [Deployer.Resume] finishes (compensating by default), so
// HAProxy serves exactly one color and the catalog agrees with it.
package deploy
