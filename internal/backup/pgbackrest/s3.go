package pgbackrest

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"homelab/internal/lab"
)

// s3Options are the repo1-* options of a repository on S3 (pgBackRest's
// user guide, "S3-Compatible Object Store Support"): the bucket, the
// endpoint's host (repo1-s3-endpoint) and port (repo1-storage-port, 443
// when the URL has none), the region (us-east-1 when the lab gives none),
// path-style URIs (the bucket in the path, which S3 servers other than
// AWS serve) and the repository's place in the bucket (repo1-path: "/"
// and the prefix). ca is the repo1-storage-ca-file when the location has
// a ca_file. The keys are no options here: see secrets.
func s3Options(r lab.PgBackRestRepo, ca string) (string, error) {
	u, err := url.Parse(r.Endpoint)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return "", fmt.Errorf("endpoint %q: pgBackRest reaches S3 at https://HOST[:PORT] only", r.Endpoint)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	region := r.Region
	if region == "" {
		region = "us-east-1"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "repo1-type=s3\nrepo1-s3-bucket=%s\nrepo1-s3-endpoint=%s\nrepo1-storage-port=%s\nrepo1-s3-region=%s\nrepo1-s3-uri-style=path\nrepo1-path=/%s\n",
		r.Bucket, u.Hostname(), port, region, strings.Trim(r.Prefix, "/"))
	if r.CAFile != "" {
		fmt.Fprintf(&s, "repo1-storage-ca-file=%s\n", ca)
	}
	return s.String(), nil
}

// S3Error is a pgbackrest command that failed because of the repository's
// S3 server: Cause says what, Fix what to do. Its text is one line (the
// caller names the target).
type S3Error struct {
	Target, Endpoint, Bucket string
	Cause, Fix               string
	Err                      error
}

func (e *S3Error) Error() string {
	return fmt.Sprintf("pgBackRest repository on S3 (%s, bucket %s): %s: %s", e.Endpoint, e.Bucket, e.Cause, e.Fix)
}

func (e *S3Error) Unwrap() error { return e.Err }

// s3Code is the S3 error code in a response pgBackRest quotes
// ("*** Response Content ***: <Error><Code>NoSuchBucket</Code>...").
var s3Code = regexp.MustCompile(`<Code>([A-Za-z]+)</Code>`)

// s3Causes are pgBackRest's error texts (its error codes in brackets) and
// the S3 codes it quotes that name a cause on the S3 side, with the fix.
var s3Causes = []struct {
	re         *regexp.Regexp
	cause, fix string
}{
	{regexp.MustCompile(`SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied`), "the S3 server refused the keys",
		"check pgbackrest.repo's access_key_id_env/_file and secret_access_key_env/_file (and that the key may use the bucket)"},
	{regexp.MustCompile(`NoSuchBucket`), "the bucket does not exist", "create the bucket, or correct pgbackrest.repo's bucket"},
	{regexp.MustCompile(`RequestTimeTooSkewed`), "this host's clock differs too much from the S3 server's", "set the clocks right (NTP: timedatectl set-ntp true)"},
	{regexp.MustCompile(`unable to verify certificate|certificate verify failed|in certificate common name or subject alternative names`), "the server's TLS certificate is not trusted",
		"set pgbackrest.repo's ca_file to the CA that signed it, and name the server in the endpoint as its certificate does (pgBackRest checks the DNS names, not IP addresses)"},
	{regexp.MustCompile(`\[049\]|unable to connect to|Connection refused|unable to get address`), "the S3 server cannot be reached",
		"check that the server runs and that the host and port of pgbackrest.repo's endpoint are right"},
}

// watch notes what a command's stderr says, line by line (pgBackRest's
// messages, with the request and the response they quote, run longer
// than the tail execx keeps): the first S3 cause (when the repository is
// on S3) and whether the stanza is missing. Its line method is execx's
// OnStderr.
type watch struct {
	s3       bool
	cause    int // index in s3Causes + 1; 0: none yet
	code     string
	noStanza bool
}

// noStanzaHint is pgBackRest's hint when a command needs the stanza's
// info files and the repository has none.
const noStanzaHint = "has a stanza-create been performed?"

func (w *watch) line(l string) {
	if strings.Contains(l, noStanzaHint) {
		w.noStanza = true
	}
	if !w.s3 || w.cause > 0 {
		return
	}
	code := ""
	if m := s3Code.FindStringSubmatch(l); m != nil {
		code, l = m[1], m[1]
	}
	for i, c := range s3Causes {
		if c.re.MatchString(l) {
			w.cause, w.code = i+1, code
			return
		}
	}
}

// s3Error is err as an *S3Error when w saw a cause, nil otherwise.
func (r *runner) s3Error(w *watch, err error) error {
	if w.cause == 0 {
		return nil
	}
	c := s3Causes[w.cause-1]
	cause := c.cause
	if w.code != "" {
		cause += " (" + w.code + ")"
	}
	repo := r.b.PgBackRest.Repo
	return &S3Error{Target: r.b.Name, Endpoint: repo.Endpoint, Bucket: repo.Bucket, Cause: cause, Fix: c.fix, Err: err}
}
