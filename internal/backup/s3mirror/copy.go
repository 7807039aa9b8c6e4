package s3mirror

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/minio/minio-go/v7"
)

// plainMD5 matches an ETag that is the MD5 of the content (an object
// uploaded in one part); a multipart upload's ETag ends in -<parts>.
var plainMD5 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// errSourceGone is a copy whose source object no longer exists (deleted
// after it was listed).
var errSourceGone = errors.New("the object is gone from where it was listed")

// gone wraps err with errSourceGone when it is S3's NoSuchKey for key.
func gone(err error, key string) error {
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return fmt.Errorf("copy %q: %w", key, errSourceGone)
	}
	return nil
}

func etag(s string) string { return strings.ToLower(strings.Trim(s, `"`)) }

// copier copies objects from one endpoint to another.
type copier struct {
	from, to *endpoint
	partSize uint64
	// unchecked leaves the copies unchecked (a drill's: it reads every
	// copy back and compares it with the manifest, so that a damaged
	// object is reported with the others instead of failing the copy).
	unchecked bool
}

// serverSide reports whether the endpoints can CopyObject between them:
// the same endpoint reached with the same keys.
func (c *copier) serverSide() bool { return c.from.identity == c.to.identity }

// copyObject copies object src of c.from's bucket to dst of c.to's and
// checks the copy: its size and MD5 against want when given (a restore:
// the manifest's entry), else against the source (a backup: its size and,
// when its ETag is its MD5, that). It returns the entry of the copy (Key
// left empty). A copy is server-side when the endpoints allow it and the
// source's ETag is its MD5 (so the copy's ETag can be checked against it);
// otherwise the content is streamed through and hashed on the way.
func (c *copier) copyObject(ctx context.Context, src minio.ObjectInfo, dst string, want *Entry) (Entry, error) {
	if tag := etag(src.ETag); c.serverSide() && plainMD5.MatchString(tag) && (want == nil || want.MD5 == tag) {
		return c.copyServerSide(ctx, src, dst, want)
	}
	return c.copyStreamed(ctx, src, dst, want)
}

func (c *copier) copyServerSide(ctx context.Context, src minio.ObjectInfo, dst string, want *Entry) (Entry, error) {
	if _, err := c.to.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: c.to.bucket, Object: dst},
		minio.CopySrcOptions{Bucket: c.from.bucket, Object: src.Key}); err != nil {
		if g := gone(err, src.Key); g != nil {
			return Entry{}, g
		}
		return Entry{}, fmt.Errorf("copy %q: %w", src.Key, c.to.explain(err))
	}
	st, err := c.to.client.StatObject(ctx, c.to.bucket, dst, minio.StatObjectOptions{})
	if err != nil {
		return Entry{}, fmt.Errorf("copy %q: %w", src.Key, c.to.explain(err))
	}
	e := Entry{Size: st.Size, MD5: etag(st.ETag), MTime: src.LastModified.UTC(), ContentType: st.ContentType, Metadata: meta(st.UserMetadata)}
	if c.unchecked {
		return e, nil
	}
	return e, verify(src.Key, e, src.Size, etag(src.ETag), want)
}

func (c *copier) copyStreamed(ctx context.Context, src minio.ObjectInfo, dst string, want *Entry) (Entry, error) {
	obj, err := c.from.client.GetObject(ctx, c.from.bucket, src.Key, minio.GetObjectOptions{})
	if err != nil {
		return Entry{}, fmt.Errorf("read %q: %w", src.Key, c.from.explain(err))
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		if g := gone(err, src.Key); g != nil {
			return Entry{}, g
		}
		return Entry{}, fmt.Errorf("read %q: %w", src.Key, c.from.explain(err))
	}
	h := md5.New()
	cr := &countReader{r: io.TeeReader(obj, h)}
	_, err = c.to.client.PutObject(ctx, c.to.bucket, dst, cr, st.Size, minio.PutObjectOptions{
		ContentType: st.ContentType, UserMetadata: meta(st.UserMetadata), PartSize: c.partSize,
	})
	if err != nil {
		return Entry{}, fmt.Errorf("copy %q: %w", src.Key, c.to.explain(err))
	}
	e := Entry{Size: cr.n, MD5: hex.EncodeToString(h.Sum(nil)), MTime: st.LastModified.UTC(), ContentType: st.ContentType, Metadata: meta(st.UserMetadata)}
	if c.unchecked {
		return e, nil
	}
	srcMD5 := ""
	if tag := etag(st.ETag); plainMD5.MatchString(tag) {
		srcMD5 = tag
	}
	return e, verify(src.Key, e, st.Size, srcMD5, want)
}

// verify checks a copy against its source's size and MD5 (srcMD5 empty:
// unknown) and against want.
func verify(key string, got Entry, srcSize int64, srcMD5 string, want *Entry) error {
	switch {
	case got.Size != srcSize:
		return fmt.Errorf("copy %q: %d bytes copied, the source has %d", key, got.Size, srcSize)
	case srcMD5 != "" && got.MD5 != srcMD5:
		return fmt.Errorf("copy %q: the copy's MD5 %s differs from the source's %s", key, got.MD5, srcMD5)
	case want != nil && got.Size != want.Size:
		return fmt.Errorf("object %q: %d bytes, the manifest says %d", key, got.Size, want.Size)
	case want != nil && got.MD5 != want.MD5:
		return fmt.Errorf("object %q: MD5 %s, the manifest says %s", key, got.MD5, want.MD5)
	}
	return nil
}

// meta returns user metadata with canonical keys, nil when empty.
func meta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
