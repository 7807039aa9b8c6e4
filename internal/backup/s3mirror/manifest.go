package s3mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Manifest is a snapshot's record of what it holds, written last
// (<snapshot ID>.manifest.json beside the snapshot's prefix).
type Manifest struct {
	Format int    `json:"format"` // 1
	Target string `json:"target"`
	ID     string `json:"id"`
	RunID  string `json:"run_id"`
	// Time is when the backup began (UTC); ID is its compact form.
	Time time.Time `json:"time"`
	// Source is where the objects came from: endpoint, bucket, prefix.
	Source  Location `json:"source"`
	Objects int64    `json:"objects"`
	Bytes   int64    `json:"bytes"`
	// Entries are the objects, sorted by key; Key is relative to the
	// source prefix and to the snapshot's prefix alike.
	Entries []Entry `json:"entries"`
}

// Location is a bucket and prefix on an endpoint.
type Location struct {
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix,omitempty"`
}

// Entry is one object of a snapshot.
type Entry struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
	// MD5 is the hex MD5 of the content, checked on every copy.
	MD5         string            `json:"md5"`
	MTime       time.Time         `json:"mtime"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// idFormat is a snapshot ID: the backup's UTC start to the millisecond.
const idFormat = "20060102T150405.000Z"

// manifestSuffix ends a manifest's key.
const manifestSuffix = ".manifest.json"

// Manifest summary in the manifest object's user metadata, so that List
// needs a HEAD per snapshot, not a GET of every manifest.
const (
	metaObjects = "Homelab-Objects"
	metaBytes   = "Homelab-Bytes"
	metaRun     = "Homelab-Run"
)

// root is where a target's snapshots live in the destination bucket:
// <destination prefix><target>/.
func root(dst *endpoint, target string) string { return dst.prefix + target + "/" }

func manifestKey(dst *endpoint, target, id string) string {
	return root(dst, target) + id + manifestSuffix
}

func snapshotPrefix(dst *endpoint, target, id string) string { return root(dst, target) + id + "/" }

// writeManifest stores m as the snapshot's manifest: the last write of a
// backup, which makes the snapshot exist.
func writeManifest(ctx context.Context, dst *endpoint, m Manifest) error {
	body, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	_, err = dst.client.PutObject(ctx, dst.bucket, manifestKey(dst, m.Target, m.ID), bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "application/json", SendContentMd5: true, UserMetadata: map[string]string{
			metaObjects: strconv.FormatInt(m.Objects, 10), metaBytes: strconv.FormatInt(m.Bytes, 10), metaRun: m.RunID,
		}})
	if err != nil {
		return fmt.Errorf("write manifest: %w", dst.explain(err))
	}
	return nil
}

// readManifest reads snapshot id's manifest.
func readManifest(ctx context.Context, dst *endpoint, target, id string) (Manifest, error) {
	var m Manifest
	obj, err := dst.client.GetObject(ctx, dst.bucket, manifestKey(dst, target, id), minio.GetObjectOptions{})
	if err != nil {
		return m, dst.explain(err)
	}
	defer obj.Close()
	if err := json.NewDecoder(obj).Decode(&m); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return m, fmt.Errorf("snapshot %s: %w", id, errSnapshotGone)
		}
		return m, fmt.Errorf("snapshot %s: manifest: %w", id, dst.explain(err))
	}
	if m.ID != id || m.Format != 1 {
		return m, fmt.Errorf("snapshot %s: manifest is for %q (format %d)", id, m.ID, m.Format)
	}
	return m, nil
}

// layout is what a target's root holds: complete snapshots (with a
// manifest) and the prefixes of incomplete ones.
type layout struct {
	manifests  map[string]minio.ObjectInfo // by snapshot ID
	incomplete []string                    // snapshot IDs with objects but no manifest
}

// scan lists the target's root, one level deep.
func scan(ctx context.Context, dst *endpoint, target string) (layout, error) {
	l := layout{manifests: map[string]minio.ObjectInfo{}}
	r := root(dst, target)
	var dirs []string
	for o := range dst.client.ListObjects(ctx, dst.bucket, minio.ListObjectsOptions{Prefix: r}) {
		if o.Err != nil {
			return l, dst.explain(o.Err)
		}
		name := strings.TrimPrefix(o.Key, r)
		switch {
		case strings.HasSuffix(name, "/"):
			dirs = append(dirs, strings.TrimSuffix(name, "/"))
		case strings.HasSuffix(name, manifestSuffix):
			l.manifests[strings.TrimSuffix(name, manifestSuffix)] = o
		}
	}
	for _, d := range dirs {
		if _, ok := l.manifests[d]; !ok {
			l.incomplete = append(l.incomplete, d)
		}
	}
	return l, nil
}
