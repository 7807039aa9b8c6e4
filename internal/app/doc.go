// Package app is the one place that turns a loaded lab file into working
// parts, for the CLI (internal/cli) and the daemon (homelab serve) alike:
// the restic client of a repository, the backup manager with its
// providers, the upgrader, the certificate manager, the notifier, the
// catalog; and the few decisions that sit between the domain packages
// and a user: what follows from how an upgrade ended (restore points to
// show, upgrade_failed to send), which sagas are left unfinished, and the
// status report (catalog, probes, runtime states, certificates) that
// `homelab status`, the status page and /api/v1/status all show.
//
// app never prints: it returns values and errors, and the CLI renders
// them (text, --json) while the server serves them.
//
// Dependencies point one way:
//
//	cmd/homelab → cli
//	cli    → app, daemon, server, and the domain packages whose results
//	         it renders (backup, catalog, certs, saga, status, upgrade, ...)
//	server → app (the status report and its probes), catalog, certs,
//	         health, runtime, saga, status
//	daemon → backup, catalog, notify, restic, schedule, status; its
//	         manager and notifier are built by app and handed over by cli
//	         (Config.NewManager, Config.NewNotifier)
//	app    → backup (+ backup/files, backup/postgres), catalog, certs, doctor,
//	         health, lab, notify, restic, runtime, saga, status, upgrade
//
// app imports none of cli, server or daemon.
package app
