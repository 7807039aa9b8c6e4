// Package labsnapshot takes and restores lab snapshots: a named,
// consistent set made of what homelab already captures (`homelab snapshot
// create|list|show|restore|delete`).
//
// A lab snapshot (catalog.LabSnapshot) records, under its name, one
// restic snapshot per backup target (its members; "snapshot" alone means
// a restic snapshot in this package's errors only when it says "restic
// snapshot"), the version of every service whose runtime reports one
// (upgrade.Upgrader.VersionOf), a copy of the lab file, the SHA-256
// fingerprints of the certificates that exist (certs.Status), the color
// that serves each blue/green service and its version
// (deploy.Deployer.State: the deploy record, HAProxy agreeing), and the
// time.
//
// # Create
//
// Create is a saga (package saga, kind "snapshot create", subject
// "lab-snapshots", so one lab-snapshot saga runs at a time): record the
// snapshot as creating (versions, lab file, certificates), stop the
// services of the targets' stop lists that run (each once, in stop-list
// order: a stop list names a service before what it depends on; restarted
// in reverse), back up every target (each member journalled under
// saga.SnapshotKey, so retention keeps it while the saga is unfinished),
// start the services again, mark it complete. A failure, or a resume of
// an interrupted create, compensates: the services run again and the
// snapshot is marked incomplete, never restored, its members left to
// retention. While a lab snapshot is complete (or creating) retention
// keeps its members (backup.Manager.PlanPrune).
//
// # Restore
//
// PlanRestore refuses, before anything changes, while any other saga of
// the lab is unfinished (an upgrade or deploy of any service, a lab
// snapshot saga: its compensation would put its own state back over the
// restored lab), a snapshot that is not
// complete or one of whose members is gone from its repository
// (*MissingError), and says what the restore does: every target, every
// version change, what stops, which color serves each blue/green service
// after it (ColorPlan), and whether the lab file or certificates
// changed since (a restore puts back neither: it runs with the lab file as
// it is now). Restore is a saga (kind "snapshot
// restore"): stop the services (the targets' stop lists and the services
// whose version changes), take a restore point of the current state
// (itself a lab snapshot, pre-restore-NAME-TIME), restore every member in
// place, set each service back to its recorded version, start the
// services in reverse stop order and wait until each is healthy (the
// upgrade health gate, healthy_within of the service's upgrade section).
// A failure compensates newest first: the services are stopped, their
// versions set back, the restore point's members restored in place, and
// the services started and gated: the lab ends in its pre-restore state.
// An interrupted restore is compensated the same way by Resume.
//
// Limitation: every stop list's services stop before any target is backed
// up or restored, so a postgres target whose server is a service another
// target's stop list stops cannot be reached, and create and restore fail
// where `homelab backup run --all` works. Conflicts finds such targets from
// the lab; PlanCreate and PlanRestore warn of them.
//
// Once the restore saga is done, each blue/green service whose recorded
// color does not serve is flipped back to it by deploy's fast rollback
// (deploy.Deployer.PlanRollback and Run, a deploy saga of its own) when
// that color is the one kept for it, on the recorded version, running and
// passing its probe; otherwise the color that serves keeps serving and
// the plan's ColorPlan says why.
package labsnapshot
