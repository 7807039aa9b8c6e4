// Package notify tells people when the homelab daemon needs attention and
// pings dead-man's switches when it does not.
//
// A Notifier sends an Event (a backup, restore drill, repository check or
// prune that failed, a backup target that went overdue, a job that
// recovered) to every Channel whose On list matches the event's Kind. A
// Channel is a shoutrrr URL (github.com/nicholas-fedor/shoutrrr, the
// maintained fork: ntfy://, gotify://, slack://, discord://, smtp://,
// generic://, generic+https://...) plus optional text/template texts for
// the title and body. Ping sends an HTTP GET to a heartbeat URL
// (healthchecks.io style) after a successful backup.
//
// Delivery never blocks the caller and never returns an error: each
// channel has a FIFO queue worked by one goroutine (so a failure and the
// recovery that follows it arrive in that order), each message is tried
// up to Options.Attempts times with exponential backoff, and every failed
// attempt is logged. Close stops intake and waits for what is queued or
// retrying, up to a deadline.
//
// Notification and heartbeat URLs hold tokens. They never appear in logs
// or errors: channels are named by Channel.Name, heartbeats by their host,
// and error texts from shoutrrr or net/http are passed through Redact.
//
// Generic webhooks: generic://host[:port]/path?template=json&disabletls=yes
// posts {"title": ..., "message": ...} as JSON (disabletls=yes selects
// plain http). The shortcut generic+https://host/path (or generic+http://)
// posts to that URL as is; shoutrrr's own parameters in its query
// (template=json, method=PUT ...) are consumed, the rest are forwarded.
// Without template=json the generic service posts only the message as
// text/plain, so this package puts the title on the message's first line
// in that case.
//
// The lab file loader (internal/lab) calls CheckURL and CheckTemplate, so a
// bad notification URL or template is reported at load time.
package notify
