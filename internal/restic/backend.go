package restic

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Causes of a failed command that lie with the repository's storage (an
// S3 server, mostly), as restic's stderr names them; test with
// errors.Is. A *BackendError carries one.
var (
	// ErrBackendAuth: the server refused the access keys (a wrong or
	// unknown key ID, a wrong secret key, access denied, or no keys).
	ErrBackendAuth = errors.New("the S3 server refused the keys")
	// ErrNoBucket: the repository's bucket does not exist.
	ErrNoBucket = errors.New("the bucket does not exist")
	// ErrUnreachable: the repository's server did not answer (connection
	// refused, no such host, timeout).
	ErrUnreachable = errors.New("the repository's server cannot be reached")
	// ErrClockSkew: the server refused requests signed at this host's
	// time (S3 RequestTimeTooSkewed: the clocks differ by more than 15
	// minutes).
	ErrClockSkew = errors.New("this host's clock differs too much from the S3 server's")
)

// BackendError is a command that failed, or was stopped, because of the
// repository's storage: Cause is one of ErrBackendAuth, ErrNoBucket,
// ErrUnreachable, ErrClockSkew. Its text is one line naming the
// repository, the cause, the server's own words and the fix.
type BackendError struct {
	// Repository is the repository's name (Config.Name), or its URL.
	Repository string
	Cause      error
	// Detail is the server's or the network's words, secrets redacted.
	Detail string
}

func (e *BackendError) Error() string {
	return fmt.Sprintf("repository %s: %v (%s): %s", e.Repository, e.Cause, e.Detail, backendFix[e.Cause])
}

func (e *BackendError) Unwrap() error { return e.Cause }

// backendFix is what to do about each cause, for the message.
var backendFix = map[error]string{
	ErrBackendAuth: "check the repository's access_key_id_env/_file and secret_access_key_env/_file in the lab file (and that the key may use the bucket)",
	ErrNoBucket:    "create the bucket, correct the bucket in the repository's url, or run homelab repo init (restic creates a missing bucket)",
	ErrUnreachable: "check that the server runs and that the host and port of the repository's url are right",
	ErrClockSkew:   "set this host's and the server's clocks right (NTP: timedatectl set-ntp true) and run again",
}

// backendPatterns are the texts of restic's stderr (its retry lines and
// its final message, which quote the S3 server and Go's network errors)
// that name each cause. The S3 texts are the error messages of AWS,
// MinIO and versitygw (which share minio-go's wording); the codes are
// matched too, for servers that print them.
var backendPatterns = []struct {
	cause error
	re    *regexp.Regexp
}{
	{ErrClockSkew, regexp.MustCompile(`RequestTimeTooSkewed|difference between the request time and the (current|server's) time is too large`)},
	{ErrBackendAuth, regexp.MustCompile(`SignatureDoesNotMatch|InvalidAccessKeyId|request signature we calculated does not match|Access Key Id you provided does not exist|No user exists with the provided access key ID|Access Denied|AccessDenied|s3\.getCredentials: no credentials found`)},
	{ErrNoBucket, regexp.MustCompile(`NoSuchBucket|specified bucket does not exist`)},
	{ErrUnreachable, regexp.MustCompile(`connect: connection refused|no such host|i/o timeout|network is unreachable|no route to host|TLS handshake timeout|server misbehaving`)},
}

// retryLine is restic's line for a storage operation it will try again
// (restic's retry backend, for up to 15 minutes):
// "Stat(<config/>) returned error, retrying after 1.2s: <cause>".
var retryLine = regexp.MustCompile(`^(\S+) returned error, retrying after \S+: (.*)$`)

// classify returns the storage cause text names, if any, and the words
// that name it (text without restic's "Fatal: ..." wrapping).
func classify(text string) (error, string) {
	for _, p := range backendPatterns {
		if p.re.MatchString(text) {
			return p.cause, detail(text)
		}
	}
	return nil, ""
}

// detail is the innermost part of a restic error text: after the last
// "Fatal: " and the operation prefixes ("client.BucketExists: ",
// "Stat: "), on one line.
func detail(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if i := strings.LastIndex(text, "Fatal: "); i >= 0 {
		text = text[i+len("Fatal: "):]
	}
	if _, after, ok := strings.Cut(text, "unable to open repository at "); ok {
		if _, rest, ok := strings.Cut(after, ": "); ok {
			text = rest
		}
	}
	for {
		op, rest, ok := strings.Cut(text, ": ")
		if !ok || strings.ContainsAny(op, " \"") {
			return text
		}
		text = rest
	}
}

// unreachableTries is how many of restic's attempts to read the
// repository's config file (the first thing every command reads) may fail
// to reach the server before the command is given up (each attempt is
// already several of the S3 client's own retries): restic itself would
// try for 15 minutes. Later operations are left to restic's retries: a
// server restarting in the middle of a backup is waited for.
const unreachableTries = 2

// backendWatch follows restic's stderr and decides when a command is
// failing because of its storage: at the first retry of an operation the
// server refused for a cause retrying cannot mend (keys, bucket, clock),
// or after unreachableTries failed attempts to reach the server for the
// config file. restic would retry those for 15 minutes before failing
// with "unable to open config file".
type backendWatch struct {
	repo        string
	unreachable int
	// err is set once the command should be stopped.
	err *BackendError
}

// line looks at one line of stderr and reports whether the command should
// be stopped now (w.err says why).
func (w *backendWatch) line(line string) bool {
	if w.err != nil {
		return false
	}
	m := retryLine.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	cause, words := classify(m[2])
	switch {
	case cause == nil:
		return false
	case cause == ErrUnreachable:
		if !strings.Contains(m[1], "<config/>") {
			return false
		}
		if w.unreachable++; w.unreachable < unreachableTries {
			return false
		}
	}
	w.err = &BackendError{Repository: w.repo, Cause: cause, Detail: words}
	return true
}

// final classifies the message of a command that failed on its own.
func (w *backendWatch) final(message string) *BackendError {
	if w.err != nil {
		return w.err
	}
	if cause, words := classify(message); cause != nil {
		return &BackendError{Repository: w.repo, Cause: cause, Detail: words}
	}
	return nil
}
