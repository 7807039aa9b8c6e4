// Package status builds the report behind `homelab status`: the health of
// the lab's services; for every backup target, its last backup (age, size,
// result), its last restore drill (age, result, time to restore) and
// whether the last good backup is older than the target's schedule allows
// (its recovery point objective); the expiry of its TLS certificates; and
// the recent failures recorded in the catalog.
//
// [Build] is pure: it reads the lab and the catalog and takes the current
// time as an argument, so the same report can be shown by the CLI, served
// by the daemon and asserted by tests. [RenderText] and [RenderJSON] write
// it for a terminal and for machines.
//
// # Services
//
// The report also lists the lab's services with their health (the
// SERVICES section): [Report.AddServices] joins the results of
// health.CheckAll, which the caller runs because probing is live I/O. A
// service whose probe fails makes the report unhealthy, as an overdue
// target does; a service without a probe is listed and never fails.
//
// # Certificates
//
// The report also lists the lab's TLS certificates, the CA and every leaf
// of the lab file (the TLS section): [Report.AddCerts] takes what
// certs.Status read from disk, which the caller does. A certificate that
// is missing, expired, has an issue (say a key that does not match) or is
// merely inside its rotation window (expiring) makes the report
// unhealthy. A lab without certificates has no TLS section.
//
// # When a target is overdue
//
// A scheduled target is due again at the first schedule slot after its
// last good backup (result ok or partial) ended, plus a grace period that
// leaves time for the run itself: 10% of the interval between that slot
// and the next one, and at least [MinGrace]. A target whose due time has
// passed, or which has never been backed up successfully, is overdue.
// Targets without a schedule are run by hand and are never overdue.
//
// A schedule without a CRON_TZ= prefix is read in the time zone of the
// time passed to [Build] (the process's local zone for time.Now), which is
// what lab.ParseSchedule documents.
package status
