package restic

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Location is where a restic s3: URL points: s3:https://host[:port]/bucket[/prefix],
// s3:http://..., or s3:host/bucket[/prefix] (HTTPS), as restic reads it.
type s3Location struct {
	Endpoint string // host[:port]
	Secure   bool
	Bucket   string
}

// parseS3URL reads a restic s3: repository URL; ok is false for any
// other URL.
func parseS3URL(repo string) (s3Location, bool) {
	rest, ok := strings.CutPrefix(repo, "s3:")
	if !ok {
		return s3Location{}, false
	}
	loc := s3Location{Secure: true}
	if strings.HasPrefix(rest, "http://") || strings.HasPrefix(rest, "https://") {
		u, err := url.Parse(rest)
		if err != nil || u.Host == "" {
			return s3Location{}, false
		}
		loc.Endpoint, loc.Secure, rest = u.Host, u.Scheme == "https", strings.TrimPrefix(u.Path, "/")
	} else {
		loc.Endpoint, rest, _ = strings.Cut(rest, "/")
	}
	loc.Bucket, _, _ = strings.Cut(rest, "/")
	return loc, loc.Endpoint != "" && loc.Bucket != ""
}

// probeTimeout bounds the one request of an S3 diagnosis.
const probeTimeout = 30 * time.Second

// diagnoseS3 asks the S3 server of repository URL repo, with the keys and
// region restic got in env, what is wrong: one GetBucketLocation request
// (a GET with an S3 error document in its answer, where restic's HEAD
// requests get a bare status: a 404 that restic reads as "no repository"
// for a missing bucket, a 403 "Access Denied." for a wrong secret). It
// returns the cause (ErrBackendAuth, ErrNoBucket, ErrUnreachable,
// ErrClockSkew) and the server's words, or a nil cause when the bucket
// answers or the answer names none of them.
func diagnoseS3(ctx context.Context, repo string, env []string) (error, string) {
	loc, ok := parseS3URL(repo)
	if !ok {
		return nil, ""
	}
	var id, secret string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "AWS_ACCESS_KEY_ID":
			id = v
		case "AWS_SECRET_ACCESS_KEY":
			secret = v
		}
	}
	if id == "" || secret == "" {
		return nil, "" // restic said it: no credentials found
	}
	// No Region: minio-go then asks the server (a GET ?location=, signed
	// for us-east-1, which every S3 server accepts) instead of answering
	// from the option.
	c, err := minio.New(loc.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(id, secret, ""), Secure: loc.Secure, MaxRetries: 1,
	})
	if err != nil {
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err = c.GetBucketLocation(ctx, loc.Bucket)
	if err == nil || ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, ""
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken",
		"XAdminUserNotFound": // versitygw's unknown key ID, with a 404
		return ErrBackendAuth, s3Words(resp)
	case "NoSuchBucket":
		return ErrNoBucket, s3Words(resp)
	case "RequestTimeTooSkewed":
		return ErrClockSkew, s3Words(resp)
	}
	if cause, _ := classify(resp.Message); cause != nil && resp.Code != "" {
		return cause, s3Words(resp)
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		return ErrUnreachable, detail(err.Error())
	}
	return nil, ""
}

func s3Words(r minio.ErrorResponse) string {
	if r.Message == "" {
		return r.Code
	}
	return r.Code + ": " + r.Message
}
