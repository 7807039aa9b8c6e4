package lab

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// S3Credentials are the keys of an S3 endpoint, as the lab file names
// them wherever one is reached (a repository on S3, an s3-mirror target's
// source and destination): each key is a `*_env` or a `*_file` reference
// (see [Secret]), never a value. They are inlined into the structure that
// holds them:
//
//	access_key_id_env: S3_KEY            # or access_key_id_file: keys/id
//	secret_access_key_file: keys/secret  # or secret_access_key_env: S3_SECRET
//	region: us-east-1                    # optional
//
// restic reads them as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_DEFAULT_REGION from its environment (restic's documentation,
// "Amazon S3"); minio-go takes them as static V4 credentials.
type S3Credentials struct {
	AccessKeyIDEnv      string `yaml:"access_key_id_env"`
	AccessKeyIDFile     string `yaml:"access_key_id_file"`
	SecretAccessKeyEnv  string `yaml:"secret_access_key_env"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// Region is the bucket's region; empty lets the client find it
	// (restic and minio-go ask the server, us-east-1 when it has none).
	Region string `yaml:"region"`
}

// IsSet reports whether either key is configured.
func (c S3Credentials) IsSet() bool {
	return c.AccessKeyID().IsSet() || c.SecretAccessKey().IsSet()
}

// AccessKeyID is the access key ID reference (access_key_id_env/_file).
func (c S3Credentials) AccessKeyID() Secret {
	return Secret{Field: "access_key_id", Env: c.AccessKeyIDEnv, File: c.AccessKeyIDFile}
}

// SecretAccessKey is the secret key reference (secret_access_key_env/_file).
func (c S3Credentials) SecretAccessKey() Secret {
	return Secret{Field: "secret_access_key", Env: c.SecretAccessKeyEnv, File: c.SecretAccessKeyFile}
}

// resolvePaths makes the `*_file` paths absolute against the lab file's
// directory dir.
func (c *S3Credentials) resolvePaths(dir string) {
	if c.AccessKeyIDFile != "" {
		c.AccessKeyIDFile = absPath(dir, c.AccessKeyIDFile)
	}
	if c.SecretAccessKeyFile != "" {
		c.SecretAccessKeyFile = absPath(dir, c.SecretAccessKeyFile)
	}
}

// validateS3Credentials checks the keys of the structure at path p:
// each key set at most one way, both keys or neither (required says
// which: true when the endpoint cannot be reached without them), and no
// inline access_key_id/secret_access_key.
func (d *decoder) validateS3Credentials(p string, c S3Credentials, required bool) {
	for _, inline := range []string{"access_key_id", "secret_access_key"} {
		if d.present(p + "." + inline) {
			d.at(p+"."+inline, "inline secret not allowed: use %s_env or %s_file", inline, inline)
		}
	}
	for _, s := range []Secret{c.AccessKeyID(), c.SecretAccessKey()} {
		if s.Env != "" && s.File != "" {
			d.at(p+"."+s.Field+"_env", "%s_env and %s_file are mutually exclusive", s.Field, s.Field)
		}
	}
	id, secret := c.AccessKeyID().IsSet(), c.SecretAccessKey().IsSet()
	switch {
	case id && !secret:
		d.at(p+".secret_access_key_env", "access_key_id is set but secret_access_key is not: set secret_access_key_env or secret_access_key_file")
	case secret && !id:
		d.at(p+".access_key_id_env", "secret_access_key is set but access_key_id is not: set access_key_id_env or access_key_id_file")
	case !id && required:
		d.at(p+".access_key_id_env", "required: the S3 keys (access_key_id_env or access_key_id_file, and secret_access_key_env or secret_access_key_file)")
	}
}

// S3Location is a bucket (or a prefix of one) on an S3 endpoint, with the
// keys to reach it: an s3-mirror target's source and its destination.
//
//	endpoint: https://s3.lab:9000     # http:// or https://, no path
//	bucket: registry
//	prefix: docker/                    # optional: only keys under it ("docker" is taken as "docker/")
//	ca_file: /etc/homelab/lab-ca.pem   # optional: a CA to trust for https
//	access_key_id_env: S3_KEY
//	secret_access_key_file: keys/s3-secret
type S3Location struct {
	Endpoint string `yaml:"endpoint"`
	Bucket   string `yaml:"bucket"`
	Prefix   string `yaml:"prefix"`
	// CAFile is a PEM file of CA certificates trusted (besides the
	// system's) for an https endpoint. Relative to the lab file.
	CAFile        string `yaml:"ca_file"`
	S3Credentials `yaml:",inline"`
	// Location names an entry of the lab's s3_locations that gives the
	// endpoint, bucket, prefix, ca_file, region and keys instead (a
	// prefix given beside it replaces the location's). Validation copies
	// the named location in, so users of a loaded lab see plain fields.
	Location string `yaml:"location"`
}

// IsSet reports whether any field of the location is set.
func (l S3Location) IsSet() bool {
	return l.Endpoint != "" || l.Bucket != "" || l.Prefix != "" || l.CAFile != "" || l.S3Credentials.IsSet() || l.Region != "" || l.Location != ""
}

// useLocation resolves loc.Location, at path p, against the lab's
// s3_locations: it copies the named location into loc (keeping loc's
// prefix when one is given) and reports true; it reports false when loc
// names no location (its own fields are then to be validated). A name
// that is not there, or fields beside it other than prefix, are errors
// at p.location.
func (d *decoder) useLocation(p string, loc *S3Location, l *Lab) bool {
	if loc.Location == "" {
		return false
	}
	named := l.S3Locations[loc.Location]
	switch {
	case named == nil:
		d.at(p+".location", "unknown S3 location %q (known: %s)", loc.Location, strings.Join(slices.Sorted(maps.Keys(l.S3Locations)), ", "))
	case loc.Endpoint != "" || loc.Bucket != "" || loc.CAFile != "" || loc.Region != "" || loc.S3Credentials.IsSet():
		d.at(p+".location", "location %s gives the endpoint, bucket, ca_file, region and keys: only prefix may be set beside it", loc.Location)
	default:
		if strings.HasPrefix(loc.Prefix, "/") {
			d.at(p+".prefix", "bad prefix %q: keys do not start with /", loc.Prefix)
		}
		name, prefix := loc.Location, loc.Prefix
		*loc = *named
		loc.Location = name
		if prefix != "" {
			loc.Prefix = prefix
		}
	}
	return true
}

// resolvePaths makes CAFile and the keys' files absolute against dir.
func (l *S3Location) resolvePaths(dir string) {
	if l.CAFile != "" {
		l.CAFile = absPath(dir, l.CAFile)
	}
	l.S3Credentials.resolvePaths(dir)
}

// bucketPattern is S3's rule for bucket names (3 to 63 characters of
// lower-case letters, digits, dots and hyphens, starting and ending with
// a letter or digit).
var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// validateS3Location checks the location at path p: an http(s) endpoint
// with no path, a valid bucket name, a prefix that does not start with
// "/", and the keys (required).
func (d *decoder) validateS3Location(p string, l S3Location) {
	switch u, err := url.Parse(l.Endpoint); {
	case l.Endpoint == "":
		d.at(p+".endpoint", "required: the S3 endpoint URL, such as http://127.0.0.1:7070")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		d.at(p+".endpoint", "bad endpoint %q: expected http://HOST:PORT or https://HOST:PORT", l.Endpoint)
	case u.User != nil:
		d.at(p+".endpoint", "inline secret not allowed: no user or password in the endpoint; use access_key_id_env/_file and secret_access_key_env/_file")
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "":
		d.at(p+".endpoint", "bad endpoint %q: no path or query (the bucket goes in bucket:, a key prefix in prefix:)", l.Endpoint)
	}
	switch {
	case l.Bucket == "":
		d.at(p+".bucket", "required: the bucket's name")
	case !bucketPattern.MatchString(l.Bucket):
		d.at(p+".bucket", "bad bucket name %q: 3 to 63 lower-case letters, digits, dots and hyphens", l.Bucket)
	}
	if strings.HasPrefix(l.Prefix, "/") {
		d.at(p+".prefix", "bad prefix %q: keys do not start with /", l.Prefix)
	}
	d.validateS3Credentials(p, l.S3Credentials, true)
}

// SameEndpoint reports whether S3 endpoint URLs a and b name the same
// server: the same scheme and host (case-insensitive), the same port
// (80 and 443 when the URL names none), whatever trailing "/". Unparsable
// URLs are the same only when equal.
func SameEndpoint(a, b string) bool {
	norm := func(s string) (string, bool) {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return s, false
		}
		scheme := strings.ToLower(u.Scheme)
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[scheme]
		}
		return scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port, true
	}
	na, oka := norm(a)
	nb, okb := norm(b)
	if !oka || !okb {
		return a == b
	}
	return na == nb
}
