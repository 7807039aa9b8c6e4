package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"homelab/internal/execx"
	"homelab/internal/lab"
)

// UserManagerEnv lists the variables of homelab's environment that
// `systemctl --user` needs to find the calling user's manager (its bus
// is $XDG_RUNTIME_DIR/bus); they are passed on when set.
var UserManagerEnv = []string{"XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"}

// UnitNotFoundError is Status's error for a unit systemd does not know:
// no unit file of that name (LoadState "not-found", systemd.unit(5)
// lists where unit files are looked up) and nothing of it running.
type UnitNotFoundError struct {
	Unit string
	User bool // in the user's manager (systemctl --user)
}

func (e *UnitNotFoundError) Error() string {
	if e.User {
		return fmt.Sprintf("unit %s not found (systemctl --user)", e.Unit)
	}
	return fmt.Sprintf("unit %s not found", e.Unit)
}

// systemdProps are the unit properties Status reads (systemctl(1) "show",
// org.freedesktop.systemd1(5) for their meaning).
const systemdProps = "LoadState,LoadError,ActiveState,SubState,Result,ActiveEnterTimestamp,ExecMainStartTimestamp,ExecMainStatus"

// systemdRuntime drives one systemd unit with systemctl (systemctl(1)),
// in the system manager or, with User, the calling user's manager.
type systemdRuntime struct {
	name      string
	cfg       *lab.SystemdRuntime
	systemctl string
}

func newSystemd(name string, u *lab.SystemdRuntime, o Options) Runtime {
	bin := o.Systemctl
	if bin == "" {
		bin = "systemctl"
	}
	return &systemdRuntime{name: name, cfg: u, systemctl: bin}
}

func (r *systemdRuntime) Kind() string { return lab.RuntimeSystemd }

// Status reads the unit's state with
//
//	systemctl [--user] show --property=LoadState,ActiveState,... --timestamp=unix -- UNIT
//
// which prints one PROPERTY=value line per property, timestamps as
// "@<seconds since the epoch>" (empty when unset). ActiveState
// (systemd.unit(5), org.freedesktop.systemd1(5)) gives the State:
// active, reloading and refreshing are Running, activating and
// deactivating (a service's auto-restart is "activating (auto-restart)")
// Restarting, inactive, failed and maintenance Stopped. A running unit's
// Since is its ActiveEnterTimestamp (else ExecMainStartTimestamp), to the
// second; Since is zero in the other states. Detail is the "Active:" line of `systemctl
// status` without its time: "active (running)", "inactive (dead)",
// "failed (Result: exit-code)", followed by ", exit status N" when the
// main process exited non-zero, and the reason when the unit cannot
// start (", masked", ", unit file not found", ", unit file bad-setting:
// ..."; see parseUnitStatus). A unit systemd does not know, and that does
// not run, is a *UnitNotFoundError: "unit redis.service not found"
// (systemctl show itself succeeds for any name, with LoadState
// not-found). Other errors wrap systemctl's *execx.CmdError.
func (r *systemdRuntime) Status(ctx context.Context) (Status, error) {
	out, err := r.run(ctx, "show", "--property="+systemdProps, "--timestamp=unix", "--", r.cfg.Unit)
	if err != nil {
		return Status{}, err
	}
	st, err := parseUnitStatus(r.cfg.Unit, r.cfg.User, out)
	if err != nil {
		return Status{}, fmt.Errorf("service %s: %w", r.name, err)
	}
	return st, nil
}

// Start starts the unit (`systemctl [--user] start --no-ask-password --
// UNIT`), which returns once systemd has finished the start job: for
// Type=simple once the process is forked, for Type=notify once it reports
// ready, for Type=oneshot once it has run (systemd.service(5)). Starting
// an active unit does nothing. An error carries systemctl's stderr, such
// as "Job for app.service failed because the control process exited with
// error code" or "Unit app.service not found".
//
// It first clears the unit's failed state and start rate limit
// (`systemctl [--user] reset-failed --no-ask-password -- UNIT`): a unit
// that failed over and over (a version crash-looping under Restart=,
// which an upgrade then rolls back) has hit its StartLimitBurst, and
// systemd refuses every start within StartLimitIntervalSec ("Start
// request repeated too quickly" in the journal; systemctl says only that
// the job failed), even of a version that works. homelab starts a unit on
// purpose, as an operator does after `systemctl reset-failed`. An error
// of reset-failed is not returned: it fails for a unit systemd has not
// loaded, whose start then fails with the reason.
func (r *systemdRuntime) Start(ctx context.Context) error {
	_, _ = r.run(ctx, "reset-failed", "--no-ask-password", "--", r.cfg.Unit)
	_, err := r.run(ctx, "start", "--no-ask-password", "--", r.cfg.Unit)
	return err
}

// Stop stops the unit (`systemctl [--user] stop --no-ask-password --
// UNIT`), which returns once the unit has stopped (after its
// TimeoutStopSec at worst). Stopping an inactive or failed unit does
// nothing; a unit systemd does not know is an error ("Unit app.service
// not loaded").
func (r *systemdRuntime) Stop(ctx context.Context) error {
	_, err := r.run(ctx, "stop", "--no-ask-password", "--", r.cfg.Unit)
	return err
}

// run runs `systemctl [--user] verb args...` within the runtime's timeout
// and returns its stdout. A failure names the service and the verb and
// wraps the *execx.CmdError, whose text ends with systemctl's stderr.
func (r *systemdRuntime) run(ctx context.Context, verb string, args ...string) ([]byte, error) {
	timeout := r.cfg.Timeout
	if timeout <= 0 {
		timeout = lab.DefaultRuntimeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := []string{verb}
	env := []string{"SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	if r.cfg.User {
		argv = []string{"--user", verb}
		env = append(env, execx.PassEnv(nil, UserManagerEnv...)...)
	}
	out, err := execx.Output(ctx, execx.Cmd{Name: r.systemctl, Args: append(argv, args...), Env: env, OutlivesHomelab: true})
	if err != nil {
		var ce *execx.CmdError
		if verb == "show" && errors.As(err, &ce) && oldSystemctl(ce.Stderr) {
			return nil, fmt.Errorf("service %s: systemctl show: this systemctl does not know --timestamp=unix, which homelab needs (systemd 252, as in Debian 12, has it): upgrade systemd: %w", r.name, err)
		}
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("service %s: systemctl %s %s: no answer within %s: %w", r.name, verb, r.cfg.Unit, timeout, err)
		}
		return nil, fmt.Errorf("service %s: systemctl %s %s: %w", r.name, verb, r.cfg.Unit, err)
	}
	return out, nil
}

// parseUnitStatus makes a Status of the output of `systemctl show
// --property=systemdProps --timestamp=unix` for unit (see Status). It
// fails for a unit systemd does not know and that does not run
// (*UnitNotFoundError) and for output without an ActiveState it knows. A
// unit that cannot start because its file is masked, missing (a unit
// still running after its file was removed) or did not load (LoadState
// error or bad-setting) gets its state, with the reason at the end of
// Detail: ", masked", ", unit file not found", ", unit file bad-setting:
// Unit app.service has a bad unit file setting.".
func parseUnitStatus(unit string, user bool, out []byte) (Status, error) {
	p := parseShow(out)
	active, sub, load := p["ActiveState"], p["SubState"], p["LoadState"]
	if load == "not-found" && (active == "inactive" || active == "") {
		return Status{}, &UnitNotFoundError{Unit: unit, User: user}
	}
	var st Status
	switch active {
	case "active", "reloading", "refreshing":
		st.State = Running
		since, err := unixTimestamp(p["ActiveEnterTimestamp"])
		if err != nil {
			return Status{}, fmt.Errorf("unit %s: ActiveEnterTimestamp: %w", unit, err)
		}
		if since.IsZero() {
			if since, err = unixTimestamp(p["ExecMainStartTimestamp"]); err != nil {
				return Status{}, fmt.Errorf("unit %s: ExecMainStartTimestamp: %w", unit, err)
			}
		}
		st.Since = since
	case "activating", "deactivating":
		st.State = Restarting
	case "inactive", "failed", "maintenance":
		st.State = Stopped
	case "":
		return Status{}, fmt.Errorf("unit %s: no ActiveState in systemctl show's output %q", unit, truncate(out, 200))
	default:
		return Status{}, fmt.Errorf("unit %s: unknown ActiveState %q", unit, active)
	}
	st.Detail = activeLine(active, sub, p["Result"])
	if p["Result"] == "exit-code" && st.State != Running {
		if code := p["ExecMainStatus"]; code != "" && code != "0" {
			st.Detail += ", exit status " + code
		}
	}
	switch load {
	case "loaded", "":
	case "masked":
		st.Detail += ", masked"
	case "not-found":
		// Still running, but its unit file is gone (removed, then a
		// daemon-reload): it will not start again.
		st.Detail += ", unit file not found"
	default:
		// error or bad-setting: the unit file did not load, so the unit
		// cannot start; it may still run from before.
		st.Detail += fmt.Sprintf(", unit file %s: %s", load, loadReason(p["LoadError"]))
	}
	return st, nil
}

// activeLine is what `systemctl status` prints after "Active:", without
// the time: the active state, the sub-state in parentheses when it
// differs, and "(Result: R)" when the last run did not succeed.
func activeLine(active, sub, result string) string {
	s := active
	if sub != "" && sub != active {
		s += " (" + sub + ")"
	}
	if result != "" && result != "success" {
		s += " (Result: " + result + ")"
	}
	return s
}

// parseShow reads systemctl show's PROPERTY=value lines into a map.
func parseShow(out []byte) map[string]string {
	p := map[string]string{}
	for line := range bytes.Lines(out) {
		k, v, ok := strings.Cut(strings.TrimRight(string(line), "\r\n"), "=")
		if ok {
			p[k] = v
		}
	}
	return p
}

// unixTimestamp parses systemctl's --timestamp=unix form, "@1700000000";
// empty (never happened) is the zero time.
func unixTimestamp(s string) (time.Time, error) {
	if s == "" || s == "n/a" {
		return time.Time{}, nil
	}
	secs, ok := strings.CutPrefix(s, "@")
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not a unix timestamp (@seconds)", s)
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a unix timestamp (@seconds)", s)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return time.Unix(n, 0), nil
}

// loadReason is the message of a LoadError property, which systemctl
// prints as `D-Bus.Error.Name "message"`.
func loadReason(s string) string {
	if i := strings.IndexByte(s, '"'); i >= 0 {
		return strings.Trim(s[i:], `"`)
	}
	if s == "" {
		return "no reason given"
	}
	return s
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// oldSystemctl tells whether systemctl's stderr says that it does not
// know --timestamp=unix: "Invalid value: unix." (a systemctl whose
// --timestamp has no unix style) or "unrecognized option
// '--timestamp=unix'" (one without --timestamp).
func oldSystemctl(stderr string) bool {
	s := strings.ToLower(stderr)
	return strings.Contains(s, "--timestamp") || strings.Contains(s, "invalid value: unix")
}
