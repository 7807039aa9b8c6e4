package drillapp

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"homelab/internal/backup"
	"homelab/internal/execx"
	"homelab/internal/health"
	"homelab/internal/lab"
)

// CheckName is the name of the application check in a drill's report.
const CheckName = "app"

// HBALine is the pg_hba.conf rule a throwaway instance gets when its
// drill starts an application as user: that role's password (SCRAM)
// logins over TCP from 127.0.0.1, where it listens. The other roles of a
// restored cluster keep their passwords; they are not let in. (A name with
// a double quote matches nothing: pg_hba.conf cannot quote it.)
func HBALine(user string) string {
	return "host all \"" + user + "\" 127.0.0.1/32 scram-sha-256\n"
}

const (
	// pollEvery is how long the probe waits between attempts.
	pollEvery = 200 * time.Millisecond
	// stopGrace is how long the start command's process group has between
	// SIGTERM and SIGKILL.
	stopGrace = 10 * time.Second
	// outputLines is how many of the application's last output lines a
	// failed check shows.
	outputLines = 5
)

// Instance is the throwaway PostgreSQL as the application reaches it.
type Instance struct {
	Host     string
	Port     int
	Database string
	User     string
	Password string
}

// Env is the commands' environment: HOMELAB_DRILL_PGHOST, _PGPORT,
// _PGDATABASE, _PGUSER and _PGPASSWORD.
func (i Instance) Env() []string {
	return []string{
		"HOMELAB_DRILL_PGHOST=" + i.Host,
		"HOMELAB_DRILL_PGPORT=" + strconv.Itoa(i.Port),
		"HOMELAB_DRILL_PGDATABASE=" + i.Database,
		"HOMELAB_DRILL_PGUSER=" + i.User,
		"HOMELAB_DRILL_PGPASSWORD=" + i.Password,
	}
}

// Run is the application check of a drill whose instance listens on
// 127.0.0.1:port (with HBALine in its pg_hba.conf): it gives user a new
// password over conn (a superuser's connection to the instance), then
// runs Check with the instance in database.
func Run(ctx context.Context, a *lab.DrillApp, conn *pgx.Conn, port int, database, user string) backup.CheckResult {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	d := net.Dialer{Timeout: 5 * time.Second}
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return backup.CheckResult{Check: CheckName, Detail: "the instance does not accept TCP connections on " + addr + ": " + err.Error()}
	}
	tcp.Close()
	pass, err := SetPassword(ctx, conn, user)
	if err != nil {
		return backup.CheckResult{Check: CheckName, Detail: "give the application a login: " + err.Error()}
	}
	return Check(ctx, a, Instance{Host: "127.0.0.1", Port: port, Database: database, User: user, Password: pass})
}

// SetPassword makes a random password for role and sets it over conn as
// a SCRAM-SHA-256 verifier, with LOGIN and no expiry (a restored role
// may have had VALID UNTIL in the past).
func SetPassword(ctx context.Context, conn *pgx.Conn, role string) (string, error) {
	b := make([]byte, 24)
	rand.Read(b)
	pass := hex.EncodeToString(b)
	salt := make([]byte, 16)
	rand.Read(salt)
	v, err := scramVerifier(pass, salt, 4096)
	if err != nil {
		return "", err
	}
	// The verifier is base64, digits and $: nothing to quote.
	if _, err := conn.Exec(ctx, "alter role "+pgx.Identifier{role}.Sanitize()+" with login password '"+v+"' valid until 'infinity'"); err != nil {
		return "", err
	}
	return pass, nil
}

// scramVerifier is PostgreSQL's stored form of a SCRAM-SHA-256 password
// (RFC 5802 and 7677; PostgreSQL's "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>",
// src/backend/libpq/auth-scram.c). password is ASCII, which SASLprep
// leaves as is.
func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(msg string) []byte {
		h := hmac.New(sha256.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac("Client Key"))
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, enc(salt), enc(stored[:]), enc(mac("Server Key"))), nil
}

// Check starts a.Start (/bin/sh -c, in a.Dir, with inst's Env), probes
// a.Health every 200 ms until it passes or a.Within has passed since the
// start (or the start command fails), then always stops the application:
// a.Stop when set (bounded by lab.DefaultRuntimeTimeout), then the start
// command's process group (SIGTERM, SIGKILL after 10 s). It passes when
// the probe passed and the application stopped. A failed check's detail
// ends with the last lines of the application's output (stdout and
// stderr of the start and stop commands, the password redacted).
func Check(ctx context.Context, a *lab.DrillApp, inst Instance) (res backup.CheckResult) {
	res = backup.CheckResult{Check: CheckName}
	env, secrets := inst.Env(), []string{inst.Password}
	start := time.Now()
	bg, err := execx.Start(ctx, execx.Cmd{Name: "/bin/sh", Args: []string{"-c", a.Start}, Dir: a.Dir, Env: env, Secrets: secrets}, outputLines)
	if err != nil {
		res.Detail = "start command: " + err.Error()
		return res
	}
	var stopOut []string
	defer func() {
		// Stopped also when the drill is cancelled or timed out.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lab.DefaultRuntimeTimeout)
		defer cancel()
		var stopErr error
		if strings.TrimSpace(a.Stop) != "" {
			stopErr = execx.Run(sctx, execx.Cmd{Name: "/bin/sh", Args: []string{"-c", a.Stop}, Dir: a.Dir, Env: env, Secrets: secrets,
				OnStdout: func(l []byte) { stopOut = append(stopOut, execx.Redact(string(l), secrets...)) }})
			if stopErr != nil {
				stopErr = fmt.Errorf("stop command: %w", stopErr)
			}
		}
		if err := errors.Join(stopErr, bg.Stop(stopGrace)); err != nil {
			res.OK = false
			res.Detail += "; the application did not stop: " + oneLine(err.Error())
		}
		if !res.OK {
			if out := append(bg.Tail(), stopOut...); len(out) > 0 {
				res.Detail += "; app output: " + strings.Join(last(out, outputLines), " | ")
			}
		}
	}()

	wctx, cancel := context.WithDeadline(ctx, start.Add(a.Within))
	defer cancel()
	svc := &lab.Service{Name: "drill app", Health: a.Health}
	o := health.Options{Env: env, Secrets: secrets, LookupEnv: func(k string) (string, bool) {
		for _, kv := range env {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v, true
			}
		}
		return os.LookupEnv(k)
	}}
	exited := bg.Exited()
	kind, seen := a.Health.Kind(), "not probed"
	for {
		probe := health.Probe(wctx, svc, o)
		if probe.Healthy {
			res.OK, res.Detail = true, fmt.Sprintf("%s probe passed %s after the start: %s", kind, time.Since(start).Round(time.Millisecond), probe.Detail)
			return res
		}
		if wctx.Err() == nil || seen == "not probed" {
			seen = probe.Detail // not one cut short by the deadline
		}
		select {
		case <-exited:
			if err := bg.ExitErr(); err != nil {
				res.Detail = fmt.Sprintf("the start command failed (%v) before the %s probe passed (%s)", err, kind, seen)
				return res
			}
			exited = nil // it started the application in the background
		case <-wctx.Done():
			if ctx.Err() != nil {
				res.Detail = fmt.Sprintf("interrupted before the %s probe passed (%s)", kind, seen)
			} else {
				res.Detail = fmt.Sprintf("the %s probe did not pass within %s: %s", kind, a.Within, seen)
			}
			return res
		case <-time.After(pollEvery):
		}
	}
}

func last(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
