package restic

import (
	"errors"
	"strings"
	"testing"
)

// TestClassify names the cause of restic's real messages: lines of
// restic 0.18.1 against versitygw 1.8.0 (wrong keys, a missing bucket, a
// refused connection, an unknown host, no keys), and for clock skew the
// S3 error text AWS, MinIO and versitygw send with RequestTimeTooSkewed
// (minio-go's s3-error.go), as restic quotes it (this one is not
// provoked against the real server: that would take changing a clock).
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		text   string
		cause  error
		detail string
	}{
		{`Stat(<config/>) returned error, retrying after 918.885001ms: Stat: The request signature we calculated does not match the signature you provided. Check your key and signing method.`,
			ErrBackendAuth, "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
		{`Stat(<config/>) returned error, retrying after 1.249272105s: Stat: No user exists with the provided access key ID.`,
			ErrBackendAuth, "No user exists with the provided access key ID."},
		{"Fatal: create repository at s3:http://127.0.0.1:54248/bucket2/x failed: Fatal: unable to open repository at s3:http://127.0.0.1:54248/bucket2/x: client.BucketExists: No user exists with the provided access key ID.\n",
			ErrBackendAuth, "No user exists with the provided access key ID."},
		{"Fatal: unable to open repository at s3:http://127.0.0.1:54248/bucket1/x: s3.getCredentials: no credentials found. Use `-o s3.unsafe-anonymous-auth=true` for anonymous authentication",
			ErrBackendAuth, "no credentials found. Use `-o s3.unsafe-anonymous-auth=true` for anonymous authentication"},
		{`Stat(<config/>) returned error, retrying after 743.932366ms: Stat: The specified bucket does not exist.`,
			ErrNoBucket, "The specified bucket does not exist."},
		{`Stat(<config/>) returned error, retrying after 1.356793226s: Stat: Get "http://127.0.0.1:1/bucket2/?location=": dial tcp 127.0.0.1:1: connect: connection refused`,
			ErrUnreachable, `Get "http://127.0.0.1:1/bucket2/?location=": dial tcp 127.0.0.1:1: connect: connection refused`},
		{"Fatal: create repository at s3:http://127.0.0.1:1/b/x failed: Fatal: unable to open repository at s3:http://127.0.0.1:1/b/x: client.BucketExists: Get \"http://127.0.0.1:1/b/?location=\": dial tcp 127.0.0.1:1: connect: connection refused\n",
			ErrUnreachable, `Get "http://127.0.0.1:1/b/?location=": dial tcp 127.0.0.1:1: connect: connection refused`},
		{`Stat(<config/>) returned error, retrying after 1.494181226s: Stat: Get "http://nonexistent.invalid:9000/b/?location=": dial tcp: lookup nonexistent.invalid on 10.255.255.53:53: no such host`,
			ErrUnreachable, `Get "http://nonexistent.invalid:9000/b/?location=": dial tcp: lookup nonexistent.invalid on 10.255.255.53:53: no such host`},
		{`Stat(<config/>) returned error, retrying after 1.2s: Stat: The difference between the request time and the server's time is too large.`,
			ErrClockSkew, "The difference between the request time and the server's time is too large."},
		{`Load(<lock/1a2b>) returned error, retrying after 2s: RequestTimeTooSkewed: The difference between the request time and the current time is too large.`,
			ErrClockSkew, "The difference between the request time and the current time is too large."},
		{"Fatal: wrong password or no key found", nil, ""},
		{"unable to open config file: Stat: stat /x/config: no such file or directory\nIs there a repository at the following location?", nil, ""},
	} {
		line := tc.text
		if m := retryLine.FindStringSubmatch(line); m != nil {
			line = m[2]
		}
		cause, detail := classify(line)
		if !errors.Is(cause, tc.cause) || cause == nil && tc.cause != nil || detail != tc.detail {
			t.Errorf("classify(%q) = %v, %q; want %v, %q", tc.text, cause, detail, tc.cause, tc.detail)
		}
	}
}

// TestBackendWatch: the keys, the bucket and the clock stop a command at
// restic's first retry, anywhere; an unreachable server only after
// unreachableTries attempts at the config file, and never later in the
// command (restic waits for a server that restarts mid-backup).
func TestBackendWatch(t *testing.T) {
	refused := `Stat(<config/>) returned error, retrying after 1s: Stat: Get "http://127.0.0.1:1/b/?location=": dial tcp 127.0.0.1:1: connect: connection refused`
	w := &backendWatch{repo: "offsite"}
	for i := 1; i < unreachableTries; i++ {
		if w.line(refused) {
			t.Fatalf("stopped at attempt %d of %d", i, unreachableTries)
		}
	}
	if !w.line(refused) || !errors.Is(w.err, ErrUnreachable) {
		t.Fatalf("not stopped after %d attempts: %v", unreachableTries, w.err)
	}
	want := `repository offsite: the repository's server cannot be reached (Get "http://127.0.0.1:1/b/?location=": dial tcp 127.0.0.1:1: connect: connection refused): check that the server runs and that the host and port of the repository's url are right`
	if w.err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", w.err, want)
	}

	w = &backendWatch{repo: "offsite"}
	for range 10 {
		if w.line(`Save(<data/1a2b3c>) returned error, retrying after 1s: Put "http://127.0.0.1:9000/b/data/1a": dial tcp 127.0.0.1:9000: connect: connection refused`) {
			t.Fatal("stopped on an unreachable server in the middle of a command")
		}
	}
	if w.line("some other warning") || w.err != nil {
		t.Fatalf("stopped on a line that is no retry: %v", w.err)
	}
	if !w.line(`Save(<data/1a2b3c>) returned error, retrying after 1s: Save: Access Denied.`) || !errors.Is(w.err, ErrBackendAuth) {
		t.Fatalf("not stopped at the first refusal of the keys: %v", w.err)
	}

	re := &Error{Op: "backup", ExitCode: 130, Backend: w.err}
	if !errors.Is(re, ErrBackendAuth) || !errors.Is(re, ErrFatal) || errors.Is(re, ErrInterrupted) {
		t.Errorf("an Error stopped for its storage matches the wrong sentinels: %v", re)
	}
	if got := re.Error(); !strings.HasPrefix(got, "restic backup: repository offsite: the S3 server refused the keys (Access Denied.): check ") || strings.Contains(got, "\n") {
		t.Errorf("error text = %q", got)
	}
}

// TestParseS3URL reads restic's s3: URL forms (restic's manual, "Amazon
// S3" and "Minio Server").
func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want s3Location
		ok   bool
	}{
		{"s3:http://127.0.0.1:9000/backups/lab/restic", s3Location{"127.0.0.1:9000", false, "backups"}, true},
		{"s3:https://minio.lab/backups", s3Location{"minio.lab", true, "backups"}, true},
		{"s3:s3.amazonaws.com/devlab-backups/x", s3Location{"s3.amazonaws.com", true, "devlab-backups"}, true},
		{"s3:http://127.0.0.1:9000/", s3Location{}, false},
		{"/srv/restic", s3Location{}, false},
		{"rest:http://backup.lab:8000/", s3Location{}, false},
	} {
		got, ok := parseS3URL(tc.url)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseS3URL(%q) = %+v, %v; want %+v, %v", tc.url, got, ok, tc.want, tc.ok)
		}
	}
}
