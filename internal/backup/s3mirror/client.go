package s3mirror

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"homelab/internal/lab"
)

// maxRetries bounds minio-go's retries of a request (its default is 10,
// with backoff: minutes against an unreachable endpoint).
const maxRetries = 3

// endpoint is a connected S3 location: a client, the bucket, the key
// prefix (empty or ending in "/"), and what identifies the endpoint and
// its keys for deciding whether a copy can be server-side.
type endpoint struct {
	role   string // "source" or "destination", for errors
	url    string // the endpoint URL as the lab file gives it
	bucket string
	prefix string
	client *minio.Client
	// identity is the endpoint URL and access key ID: two locations with
	// the same identity can CopyObject between each other.
	identity string
}

// connect builds a client for loc. The keys are read from their
// references (lab.Secret): a missing key is an error naming the field,
// never the value. role names the location in errors.
func connect(role string, loc lab.S3Location) (*endpoint, error) {
	id, err := loc.AccessKeyID().Resolve()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	secret, err := loc.SecretAccessKey().Resolve()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	u, err := url.Parse(loc.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: bad endpoint %q", role, loc.Endpoint)
	}
	tr, err := transport(loc.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:      credentials.NewStaticV4(id, secret, ""),
		Secure:     u.Scheme == "https",
		Region:     loc.Region,
		Transport:  tr,
		MaxRetries: maxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", role, loc.Endpoint, err)
	}
	return &endpoint{role: role, url: loc.Endpoint, bucket: loc.Bucket, prefix: dirPrefix(loc.Prefix), client: c,
		identity: strings.TrimRight(loc.Endpoint, "/") + "|" + id}, nil
}

// transport is minio-go's default transport, trusting the CA certificates
// in caFile besides the system's when caFile is set.
func transport(caFile string) (http.RoundTripper, error) {
	tr, err := minio.DefaultTransport(true)
	if err != nil {
		return nil, err
	}
	tr.MaxIdleConnsPerHost = 64
	if caFile == "" {
		return tr, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// dirPrefix returns p with a trailing "/" (empty stays empty).
func dirPrefix(p string) string {
	if p == "" || strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

// where names the location in errors: "source bucket b on http://h:p".
func (e *endpoint) where() string {
	return fmt.Sprintf("%s bucket %s on %s", e.role, e.bucket, e.url)
}

// ErrUnreachable matches an error of a request that never got an answer
// from the endpoint (refused, no route, DNS, TLS).
var ErrUnreachable = errors.New("cannot reach the endpoint")

// explain turns a minio-go error into one line that names the cause:
// wrong keys, a missing bucket or key, an unreachable endpoint, clock
// skew; it never holds a key (minio-go's errors hold none: the request's
// URL has no credentials in it, the signature is in a header).
func (e *endpoint) explain(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurity", "AuthorizationHeaderMalformed":
		return fmt.Errorf("%s: the keys are wrong (%s): check access_key_id and secret_access_key", e.where(), resp.Code)
	case "AccessDenied":
		return fmt.Errorf("%s: access denied: the keys lack a permission (%s)", e.where(), oneLine(resp.Message))
	case "NoSuchBucket":
		return fmt.Errorf("%s: the bucket does not exist", e.where())
	case "RequestTimeTooSkewed":
		return fmt.Errorf("%s: this host's clock differs too much from the server's: fix the time (NTP)", e.where())
	}
	var nerr net.Error
	var uerr *url.Error
	if errors.As(err, &uerr) || errors.As(err, &nerr) {
		cause := err
		if uerr != nil {
			cause = uerr.Err
		}
		return fmt.Errorf("%s: %w: %s", e.where(), ErrUnreachable, oneLine(cause.Error()))
	}
	if resp.Code != "" {
		return fmt.Errorf("%s: %s: %s", e.where(), resp.Code, oneLine(resp.Message))
	}
	return fmt.Errorf("%s: %s", e.where(), oneLine(err.Error()))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// check makes sure the bucket exists and the keys work, by listing one
// key: a GET, whose error body names the cause (a HEAD's has no body, so
// wrong keys would read as a bare "access denied").
func (e *endpoint) check(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range e.client.ListObjects(ctx, e.bucket, minio.ListObjectsOptions{MaxKeys: 1, Prefix: e.prefix}) {
		return e.explain(o.Err)
	}
	return nil
}
