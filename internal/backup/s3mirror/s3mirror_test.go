package s3mirror_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"homelab/internal/backup"
	"homelab/internal/backup/backuptest"
	"homelab/internal/backup/s3mirror"
	"homelab/internal/catalog"
	"homelab/internal/lab"
	"homelab/internal/restic"
	"homelab/internal/testenv"
)

// partSize is the provider's multipart part size in these tests (S3's
// minimum), so that big.bin (above it) is copied in parts.
const partSize = 5 << 20

// object is one object of a test bucket.
type object struct {
	body        []byte
	contentType string
	meta        map[string]string
}

// sample is the round trip's source: keys with spaces, unicode and runs of
// "/", an empty object, one above the multipart threshold uploaded in
// parts (so its ETag is not its MD5), content types and user metadata.
func sample() map[string]object {
	big := make([]byte, partSize+(1<<20)+17)
	for i := range big {
		big[i] = byte(i*7 + i/4099)
	}
	return map[string]object{
		"plain.txt":                     {body: []byte("plain\n"), contentType: "text/plain"},
		"with space/file name.txt":      {body: []byte("spaces"), contentType: "text/plain; charset=utf-8", meta: map[string]string{"Owner": "ops team"}},
		"ünïcödé/ファイル.bin":              {body: []byte{0, 1, 2, 3, 255}, contentType: "application/octet-stream"},
		"deep/run/of/slashes/a/b/c.txt": {body: []byte("deep"), contentType: "text/plain", meta: map[string]string{"Color": "blue", "Build": "42"}},
		"empty":                         {body: nil, contentType: "application/x-empty"},
		"big.bin":                       {body: big, contentType: "application/x-big", meta: map[string]string{"Sha": "none"}},
	}
}

// fill uploads objs into bucket under prefix.
func fill(t *testing.T, c *minio.Client, bucket, prefix string, objs map[string]object) {
	t.Helper()
	for k, o := range objs {
		if _, err := c.PutObject(context.Background(), bucket, prefix+k, bytes.NewReader(o.body), int64(len(o.body)),
			minio.PutObjectOptions{ContentType: o.contentType, UserMetadata: o.meta, PartSize: partSize}); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
}

// state is what a bucket holds under a prefix: key (without the prefix)
// -> size, MD5 of the content read back, content type, user metadata.
func state(t *testing.T, c *minio.Client, bucket, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		obj, err := c.GetObject(ctx, bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := md5.New()
		n, err := io.Copy(h, obj)
		if err != nil {
			t.Fatal(err)
		}
		st, err := obj.Stat()
		if err != nil {
			t.Fatal(err)
		}
		obj.Close()
		out[strings.TrimPrefix(o.Key, prefix)] = fmt.Sprintf("%d %s %s %v", n, hex.EncodeToString(h.Sum(nil)), st.ContentType, st.UserMetadata)
	}
	return out
}

func sameState(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: %q missing", what, k)
		} else if g != w {
			t.Errorf("%s: %q is %s, want %s", what, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %q should not be there", what, k)
		}
	}
}

// mirrorEnv is a lab with one s3-mirror target "media" from srv's bucket
// src (prefix srcPrefix) to dst's bucket dest (prefix "mirrors").
type mirrorEnv struct {
	*backuptest.Env
	p               *s3mirror.Provider
	srv, dstSrv     *testenv.S3Server
	src, dest       string
	srcPrefix       string
	srcC, dstC      *minio.Client
	extraYAML       string
	destPrefixInLab string
}

func newMirror(t *testing.T, srv, dstSrv *testenv.S3Server, srcPrefix, extra string) *mirrorEnv {
	t.Helper()
	e := &mirrorEnv{srv: srv, dstSrv: dstSrv, srcPrefix: srcPrefix, srcC: srv.Client(t), dstC: dstSrv.Client(t),
		p: &s3mirror.Provider{PartSize: partSize, Parallel: 4}}
	e.src = srv.Bucket(t, "src")
	e.dest = dstSrv.Bucket(t, "dest")
	dir := t.TempDir()
	// Source keys by environment, destination keys by file.
	t.Setenv("TEST_SRC_KEY", srv.AccessKeyID)
	t.Setenv("TEST_SRC_SECRET", srv.SecretAccessKey)
	os.WriteFile(filepath.Join(dir, "dst-id"), []byte(dstSrv.AccessKeyID+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "dst-secret"), []byte(dstSrv.SecretAccessKey+"\n"), 0o600)
	yaml := fmt.Sprintf(`  media:
    provider: s3-mirror
    source: {endpoint: %s, bucket: %s, prefix: %q, access_key_id_env: TEST_SRC_KEY, secret_access_key_env: TEST_SRC_SECRET, region: us-east-1}
    destination: {endpoint: %s, bucket: %s, prefix: mirrors, access_key_id_file: dst-id, secret_access_key_file: dst-secret, region: us-east-1}
    retention: {keep_last: 2}
%s`, srv.URL, e.src, srcPrefix, dstSrv.URL, e.dest, extra)
	e.Env = backuptest.New(t, dir, map[string]backup.Provider{"s3-mirror": e.p}, "", yaml)
	return e
}

// TestRoundTrip: a backup, restored into a new bucket, equals the source
// (every key, size, MD5 of the content, content type, user metadata),
// through server-side copies (same endpoint) and streamed ones (another
// endpoint); the drill passes and leaves no bucket; list shows the
// object count and bytes.
func TestRoundTrip(t *testing.T) {
	srv := testenv.S3(t)
	for _, tc := range []struct {
		name   string
		dstSrv *testenv.S3Server
	}{{"same endpoint", srv}, {"other endpoint", testenv.S3(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newMirror(t, srv, tc.dstSrv, "app/", "    drill: {checks: [{object: plain.txt}, {min_objects: 6}]}\n")
			objs := sample()
			fill(t, e.srcC, e.src, "app/", objs)
			fill(t, e.srcC, e.src, "", map[string]object{"outside-the-prefix": {body: []byte("not mine")}})
			want := state(t, e.srcC, e.src, "app/")
			if len(want) != len(objs) {
				t.Fatalf("the source holds %d objects, want %d: %v", len(want), len(objs), want)
			}
			rep := e.MustBackup(t, "media")
			var total int64
			for _, o := range objs {
				total += int64(len(o.body))
			}
			if rep.Run.Files != int64(len(objs)) || rep.Run.Bytes != total {
				t.Errorf("run: %d objects %d bytes, want %d and %d", rep.Run.Files, rep.Run.Bytes, len(objs), total)
			}
			rows, err := e.M.List(ctx, "media")
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].ID != rep.Run.SnapshotID || rows[0].Files != int64(len(objs)) || rows[0].Bytes != total {
				t.Fatalf("list: %+v, want snapshot %s of %d objects, %d bytes", rows, rep.Run.SnapshotID, len(objs), total)
			}

			plan, err := e.M.PlanRestore(ctx, "media", "latest", backup.Destination{Bucket: "restored"})
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Replaces) != 0 {
				t.Errorf("a restore into a new bucket replaces %v", plan.Replaces)
			}
			if _, err := e.M.Restore(ctx, plan); err != nil {
				t.Fatal(err)
			}
			sameState(t, "restored bucket", state(t, e.srcC, "restored", "app/"), want)
			if got := state(t, e.srcC, "restored", ""); len(got) != len(want) {
				t.Errorf("restored bucket holds %d objects, want %d", len(got), len(want))
			}

			out := e.M.Verify(ctx, "media")
			if out.Err != nil || out.Drill.Result != catalog.ResultOK {
				t.Fatalf("drill: %v %s\n%s", out.Err, out.Drill.Result, out.Report.Output())
			}
			if len(out.Report.Checks) != 3 {
				t.Errorf("drill checks: %s", out.Report.Output())
			}
			noDrillBuckets(t, e.dstC)
		})
	}
}

func noDrillBuckets(t *testing.T, c *minio.Client) {
	t.Helper()
	for _, b := range drillBuckets(t, c, "homelab-drill-") {
		t.Errorf("drill bucket %s left behind", b)
	}
}

// drillBuckets returns the names of the buckets whose name starts with
// prefix (homelab-drill-, or a target's homelab-drill-<target>-).
func drillBuckets(t *testing.T, c *minio.Client, prefix string) []string {
	t.Helper()
	bs, err := c.ListBuckets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		if strings.HasPrefix(b.Name, prefix) {
			names = append(names, b.Name)
		}
	}
	return names
}

// TestRestoreOverSource: a restore into the source bucket asks (the plan
// says it replaces it), puts changed and deleted objects back, and
// removes objects added since only with Delete.
func TestRestoreOverSource(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	e := newMirror(t, srv, srv, "", "")
	fill(t, e.srcC, e.src, "", sample())
	want := state(t, e.srcC, e.src, "")
	e.MustBackup(t, "media")
	fill(t, e.srcC, e.src, "", map[string]object{"plain.txt": {body: []byte("changed")}, "added later": {body: []byte("new")}})
	if err := e.srcC.RemoveObject(ctx, e.src, "empty", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, del := range []bool{false, true} {
		plan, err := e.M.PlanRestore(ctx, "media", "latest", backup.Destination{Bucket: e.src, Delete: del})
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Replaces) != 1 {
			t.Fatalf("a restore over the source replaces %v", plan.Replaces)
		}
		if _, err := e.M.Restore(ctx, plan); err != nil {
			t.Fatal(err)
		}
		got := state(t, e.srcC, e.src, "")
		if !del {
			if _, ok := got["added later"]; !ok {
				t.Fatal("a restore without Delete removed an object that is not in the snapshot")
			}
			delete(got, "added later")
		}
		sameState(t, fmt.Sprintf("source after restore (delete %v)", del), got, want)
	}
	// In place (an upgrade's rollback): the source becomes the snapshot
	// exactly, without Delete.
	fill(t, e.srcC, e.src, "", map[string]object{"added later": {body: []byte("new")}})
	plan, err := e.M.PlanRestore(ctx, "media", "latest", backup.Destination{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.M.Restore(ctx, plan); err != nil {
		t.Fatal(err)
	}
	sameState(t, "source after an in-place restore", state(t, e.srcC, e.src, ""), want)
	if _, err := e.M.PlanRestore(ctx, "media", "latest", backup.Destination{Path: "/tmp/x"}); err == nil {
		t.Error("a restore of a bucket into a directory was planned")
	}
}

// TestIncompleteSnapshot: objects under a snapshot prefix with no
// manifest (a backup that died mid-copy) are not a snapshot, are never
// listed or drilled, and the next backup removes them; the buckets of
// drills that died are removed by the next drill.
func TestIncompleteSnapshot(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	e := newMirror(t, srv, srv, "", "")
	fill(t, e.srcC, e.src, "", sample())
	e.MustBackup(t, "media")
	left := "mirrors/media/20200101T000000.000Z/"
	fill(t, e.dstC, e.dest, left, map[string]object{"plain.txt": {body: []byte("half")}, "x/y": {body: []byte("way")}})
	rows, err := e.M.List(ctx, "media")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("list shows %d snapshots, want 1 (the incomplete one is not a snapshot)", len(rows))
	}
	e.MustBackup(t, "media")
	if got := state(t, e.dstC, e.dest, left); len(got) != 0 {
		t.Fatalf("the next backup left the incomplete snapshot's objects: %v", got)
	}
	if rows, _ := e.M.List(ctx, "media"); len(rows) != 2 {
		t.Fatalf("list shows %d snapshots, want 2", len(rows))
	}

	// A drill bucket of a homelab of this host that is gone (a drill
	// killed mid-way) is removed by the next drill, and so is one named
	// before buckets named their host, and one of this process that no
	// drill uses (its removal failed: a daemon lives on); one of another
	// live process (the test's parent) is left alone, and so is one of
	// another host, whatever its process ID says here.
	host := s3mirror.HostID()
	dead, live := s3mirror.DrillBucket("media", host, 999999999, "0a1b2c3d"), s3mirror.DrillBucket("media", host, os.Getppid(), "0a1b2c3d")
	mine := s3mirror.DrillBucket("media", host, os.Getpid(), "0a1b2c3d")
	old := "homelab-drill-media-999999999-0a1b2c3d"
	otherHost := s3mirror.DrillBucket("media", "0000abcd", 999999999, "0a1b2c3d")
	if host == "0000abcd" {
		otherHost = s3mirror.DrillBucket("media", "0000abce", 999999999, "0a1b2c3d")
	}
	for _, b := range []string{dead, live, mine, old, otherHost} {
		if err := e.dstC.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
		fill(t, e.dstC, b, "", map[string]object{"x": {body: []byte("x")}})
	}
	if out := e.M.Verify(ctx, "media"); out.Err != nil || len(out.Report.Leftovers) != 0 {
		t.Fatalf("drill: %v, leftovers %v", out.Err, out.Report.Leftovers)
	}
	if ok, _ := e.dstC.BucketExists(ctx, dead); ok {
		t.Error("the dead drill's bucket is still there")
	}
	if ok, _ := e.dstC.BucketExists(ctx, mine); ok {
		t.Error("this process's leftover drill bucket is still there")
	}
	if ok, _ := e.dstC.BucketExists(ctx, live); !ok {
		t.Error("the live drill's bucket was removed")
	}
	if ok, _ := e.dstC.BucketExists(ctx, old); ok {
		t.Error("the dead drill's bucket named before hosts were is still there")
	}
	if ok, _ := e.dstC.BucketExists(ctx, otherHost); !ok {
		t.Error("another host's drill bucket was removed")
	}
	if n := len(s3mirror.DrillBucket(strings.Repeat("t", 40), host, 4194304, "0a1b2c3d")); n > 63 {
		t.Errorf("a drill bucket name of %d characters: S3 allows 63", n)
	}
}

// TestDamagedSnapshotFailsDrill: an object changed (same size) or deleted
// inside a stored snapshot, or every object altered on disk behind the
// server's back (its stored ETag no longer its MD5), fails the drill,
// which is recorded as failed with the objects named, and still removes
// its bucket.
func TestDamagedSnapshotFailsDrill(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, e *mirrorEnv, prefix string) error
		detail string
	}{
		{"changed", func(t *testing.T, e *mirrorEnv, prefix string) error {
			_, err := e.dstC.PutObject(ctx, e.dest, prefix+"plain.txt", strings.NewReader("PLAIN\n"), 6, minio.PutObjectOptions{ContentType: "text/plain"})
			return err
		}, `"plain.txt" has MD5`},
		{"deleted", func(t *testing.T, e *mirrorEnv, prefix string) error {
			return e.dstC.RemoveObject(ctx, e.dest, prefix+"with space/file name.txt", minio.RemoveObjectOptions{})
		}, `"with space/file name.txt" is missing`},
		// Behind the server's back (bit rot under it): the stored ETags
		// no longer match the content, and every object is reported.
		{"altered on disk", func(t *testing.T, e *mirrorEnv, prefix string) error {
			damageSnapshots(t, filepath.Join(e.srv.Dir, e.dest, "mirrors"))
			return nil
		}, "6 of 6 objects differ from the manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMirror(t, srv, srv, "", "")
			fill(t, e.srcC, e.src, "", sample())
			rep := e.MustBackup(t, "media")
			if out := e.M.Verify(ctx, "media"); out.Err != nil {
				t.Fatalf("drill of the intact snapshot: %v", out.Err)
			}
			if err := tc.damage(t, e, "mirrors/media/"+rep.Run.SnapshotID+"/"); err != nil {
				t.Fatal(err)
			}
			out := e.M.Verify(ctx, "media")
			if !errors.Is(out.Err, backup.ErrDrillFailed) || out.Drill.Result != catalog.ResultFailed {
				t.Fatalf("drill of a damaged snapshot: %v, %s", out.Err, out.Drill.Result)
			}
			if !strings.Contains(out.Drill.Output, tc.detail) {
				t.Errorf("drill output does not say %s:\n%s\n(error: %v)", tc.detail, out.Drill.Output, out.Err)
			}
			ds, err := e.Store.Drills(ctx, catalog.DrillFilter{Target: "media"})
			if err != nil || len(ds) != 2 || ds[0].Result != catalog.ResultFailed {
				t.Fatalf("recorded drills: %+v %v", ds, err)
			}
			noDrillBuckets(t, e.dstC)
		})
	}
}

// TestPrune: retention over the snapshots' times, with the floor (the
// newest drilled snapshot is kept), removes the manifests and objects of
// the others.
func TestPrune(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	e := newMirror(t, srv, srv, "", "")
	fill(t, e.srcC, e.src, "", map[string]object{"a": {body: []byte("a")}, "b/c": {body: []byte("bc")}})
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	e.p.Now = func() time.Time { return now }
	var ids []string
	for i := range 5 {
		now = now.Add(24 * time.Hour)
		ids = append(ids, e.MustBackup(t, "media").Run.SnapshotID)
		if i == 1 {
			if out := e.M.Verify(ctx, "media"); out.Err != nil {
				t.Fatal(out.Err)
			}
		}
	}
	plan, err := e.M.Prune(ctx, "media", false)
	if err != nil {
		t.Fatal(err)
	}
	ids0 := func(snaps []backup.Snapshot) []string {
		var out []string
		for _, s := range snaps {
			out = append(out, s.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := ids0(plan.Protected); !slices.Equal(got, []string{ids[1]}) {
		t.Errorf("protected %v, want the drilled %s", got, ids[1])
	}
	if got := ids0(plan.Remove); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Errorf("removed %v, want %v", got, []string{ids[0], ids[2]})
	}
	rows, err := e.M.List(ctx, "media")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, r := range rows {
		left = append(left, r.ID)
	}
	if want := []string{ids[1], ids[3], ids[4]}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	for _, id := range []string{ids[0], ids[2]} {
		if got := state(t, e.dstC, e.dest, "mirrors/media/"+id); len(got) != 0 {
			t.Errorf("pruned snapshot %s left %v", id, got)
		}
	}
}

// TestPruneDaysAreLocal: keep_daily counts the host's days, as restic
// forget does with the times it keeps in the backup host's zone: in
// UTC+10, a (Mar 1 05:00Z) is alone on its local day and b (Mar 1 20:00Z)
// shares one with c (Mar 2 01:00Z), so keep_daily 2 keeps c and a and
// removes b (counted in UTC, it would keep c and b).
func TestPruneDaysAreLocal(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	local := time.Local
	time.Local = time.FixedZone("UTC+10", 10*3600)
	t.Cleanup(func() { time.Local = local })
	e := newMirror(t, srv, srv, "", "")
	e.Lab.Backups["media"].Retention = lab.Retention{KeepDaily: 2}
	fill(t, e.srcC, e.src, "", map[string]object{"a": {body: []byte("a")}})
	var ids []string
	for _, at := range []time.Time{time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)} {
		e.p.Now = func() time.Time { return at }
		ids = append(ids, e.MustBackup(t, "media").Run.SnapshotID)
	}
	plan, err := e.M.PlanPrune(ctx, "media")
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, s := range plan.Remove {
		removed = append(removed, s.ID)
	}
	if !slices.Equal(removed, []string{ids[1]}) {
		t.Errorf("keep_daily 2 in UTC+10 removes %v, want [%s] (the older of the two on the local day Mar 2)", removed, ids[1])
	}
}

// TestErrors: wrong keys, a missing bucket and an unreachable endpoint
// fail the backup with one line naming the cause, and no secret.
func TestErrors(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		name  string
		setup func(e *mirrorEnv)
		want  string
	}{
		{"wrong keys", func(e *mirrorEnv) { t.Setenv("TEST_SRC_SECRET", "wrong-secret-0123456789") }, "source bucket src-"},
		{"missing bucket", func(e *mirrorEnv) { e.Lab.Backups["media"].Source.Bucket = "no-such-bucket" }, "source bucket no-such-bucket on " + srv.URL + ": the bucket does not exist"},
		{"unreachable", func(e *mirrorEnv) { e.Lab.Backups["media"].Destination.Endpoint = closed }, "cannot reach the endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMirror(t, srv, srv, "", "")
			tc.setup(e)
			rep := e.M.Backup(ctx, "media")
			if rep.Err == nil {
				t.Fatal("backup succeeded")
			}
			msg := rep.Err.Error()
			t.Logf("error: %s", msg)
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line with %q", msg, tc.want)
			}
			for _, s := range []string{srv.SecretAccessKey, "wrong-secret-0123456789"} {
				if strings.Contains(msg, s) || strings.Contains(rep.Run.Error, s) {
					t.Errorf("error holds a secret: %s", msg)
				}
			}
			if tc.name == "wrong keys" && !strings.Contains(msg, "the keys are wrong") {
				t.Errorf("error %q does not say the keys are wrong", msg)
			}
		})
	}
}

// TestCAFile: a source over https with a certificate of its own CA is
// reached with ca_file, and refused (one line, the cause named) without.
func TestCAFile(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	tlsSrv := httptest.NewUnstartedServer(reverseProxy(t, srv))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newMirror(t, srv, srv, "", "")
	fill(t, e.srcC, e.src, "", map[string]object{"a": {body: []byte("over tls")}})
	src := &e.Lab.Backups["media"].Source.S3Location
	src.Endpoint = tlsSrv.URL
	rep := e.M.Backup(ctx, "media")
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "cannot reach the endpoint") || !strings.Contains(rep.Err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v", rep.Err)
	}
	src.CAFile = ca
	if rep := e.M.Backup(ctx, "media"); rep.Err != nil || rep.Run.Files != 1 {
		t.Fatalf("with ca_file: %v (%d objects)", rep.Err, rep.Run.Files)
	}
}

// TestRestoreIntoDestinationRefused: a restore whose bucket and prefix
// hold the snapshots (--to-bucket naming the destination bucket, on the
// same endpoint, with a source prefix that contains the destination's)
// is refused before it writes or deletes anything: with --delete it
// would remove every snapshot, as none is in the snapshot restored.
func TestRestoreIntoDestinationRefused(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	e := newMirror(t, srv, srv, "", "")
	fill(t, e.srcC, e.src, "", map[string]object{"a.txt": {body: []byte("a")}})
	e.MustBackup(t, "media")
	before := state(t, e.dstC, e.dest, "")
	plan, err := e.M.PlanRestore(ctx, "media", "latest", backup.Destination{Bucket: e.dest, Delete: true})
	if err == nil {
		_, err = e.M.Restore(ctx, plan)
	}
	if err == nil || !strings.Contains(err.Error(), "holds the snapshots") {
		t.Errorf("a restore into the destination's snapshots: %v", err)
	}
	sameState(t, "destination after a refused restore", state(t, e.dstC, e.dest, ""), before)
}

// TestSourceObjectDeletedMidBackup: an object deleted from the source
// after the backup listed it and before it copied it is left out of the
// snapshot (the doc's promise), not a failed backup; the snapshot's
// manifest holds the others.
func TestSourceObjectDeletedMidBackup(t *testing.T) {
	srv := testenv.S3(t)
	ctx := context.Background()
	for _, dstSrv := range []*testenv.S3Server{srv, testenv.S3(t)} { // server-side and streamed copies
		e := newMirror(t, srv, dstSrv, "", "")
		e.p.Parallel = 1 // in key order: a.txt, then b.txt, then z.txt
		fill(t, e.srcC, e.src, "", map[string]object{"a.txt": {body: []byte("a")}, "b.txt": {body: []byte("b")}, "z.txt": {body: []byte("z")}})
		deleted := false
		snap, err := e.p.Backup(ctx, backup.Target{Spec: e.Lab.Backups["media"]}, "run1", func(restic.Status) {
			if !deleted {
				deleted = true
				if err := e.srcC.RemoveObject(ctx, e.src, "z.txt", minio.RemoveObjectOptions{}); err != nil {
					t.Error(err)
				}
			}
		})
		if err != nil {
			t.Fatalf("a backup whose source lost an object mid-run: %v", err)
		}
		if !deleted || snap.Files != 2 {
			t.Errorf("snapshot of %d objects (deleted %v), want a.txt and b.txt", snap.Files, deleted)
		}
	}
}

// reverseProxy forwards requests to srv. It keeps the Host header the
// client sent, so that a signature made for the proxy's address verifies
// on srv.
func reverseProxy(t *testing.T, srv *testenv.S3Server) *httputil.ReverseProxy {
	t.Helper()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return httputil.NewSingleHostReverseProxy(target)
}
