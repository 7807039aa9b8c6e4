package s3mirror

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"

	"homelab/internal/backup"
	"homelab/internal/lab"
	"homelab/internal/restic"
)

// Provider is the s3-mirror provider (see the package comment).
type Provider struct {
	// Parallel bounds the objects copied (or read back by a drill) at
	// once; default 16.
	Parallel int
	// PartSize is the part size of streamed copies of large objects;
	// default minio-go's (at least 16 MiB). Tests set it low to exercise
	// multipart uploads.
	PartSize uint64
	// Now is the clock that names snapshots; default time.Now.
	Now func() time.Time
}

var _ backup.Provider = (*Provider)(nil)

// errSnapshotGone is a snapshot whose manifest is no longer there
// (pruned): it matches restic.ErrSnapshotNotFound, so the manager's
// restore of "latest" from the catalog lists and retries as it does for
// restic targets.
var errSnapshotGone = fmt.Errorf("manifest is gone: %w", restic.ErrSnapshotNotFound)

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Provider) parallel() int {
	if p.Parallel > 0 {
		return p.Parallel
	}
	return 16
}

// connect connects to the target's source and destination and checks that
// both buckets are there and the keys work.
func connectTarget(ctx context.Context, t backup.Target) (src, dst *endpoint, err error) {
	if src, err = connect("source", t.Spec.Source.S3Location); err != nil {
		return nil, nil, err
	}
	if dst, err = connect("destination", t.Spec.Destination); err != nil {
		return nil, nil, err
	}
	if err := src.check(ctx); err != nil {
		return nil, nil, err
	}
	if err := dst.check(ctx); err != nil {
		return nil, nil, err
	}
	return src, dst, nil
}

// sourceURL names the source in snapshots' Paths: s3:<endpoint>/<bucket>/<prefix>.
func sourceURL(src *endpoint) string {
	return "s3:" + strings.TrimRight(src.url, "/") + "/" + src.bucket + "/" + src.prefix
}

// Backup copies every object under the source prefix into a new snapshot
// prefix of the destination and writes the manifest last. It first
// removes what incomplete snapshots of the target (no manifest: a backup
// killed or failed mid-copy) left. A failed backup removes what it copied
// (best effort; the next backup removes the rest). Objects deleted from
// the source while it runs are left out; one that changes while it is
// copied fails the backup (its size or MD5 does not match).
func (p *Provider) Backup(ctx context.Context, t backup.Target, runID string, progress backup.ProgressFunc) (backup.Snapshot, error) {
	src, dst, err := connectTarget(ctx, t)
	if err != nil {
		return backup.Snapshot{}, err
	}
	lay, err := scan(ctx, dst, t.Name())
	if err != nil {
		return backup.Snapshot{}, err
	}
	for _, id := range lay.incomplete {
		if err := removePrefix(ctx, dst, snapshotPrefix(dst, t.Name(), id)); err != nil {
			return backup.Snapshot{}, fmt.Errorf("remove incomplete snapshot %s: %w", id, err)
		}
	}
	start := p.now().UTC()
	id := start.Format(idFormat)
	if _, ok := lay.manifests[id]; ok {
		return backup.Snapshot{}, fmt.Errorf("snapshot %s exists already", id)
	}
	objs, err := listAll(ctx, src, src.prefix)
	if err != nil {
		return backup.Snapshot{}, err
	}
	prefix := snapshotPrefix(dst, t.Name(), id)
	jobs := make([]job, len(objs))
	for i, o := range objs {
		rel := strings.TrimPrefix(o.Key, src.prefix)
		jobs[i] = job{src: o, key: rel, dst: prefix + rel, skipGone: true}
	}
	entries, err := p.copyAll(ctx, &copier{from: src, to: dst, partSize: p.PartSize}, jobs, progress)
	if err == nil {
		m := Manifest{Format: 1, Target: t.Name(), ID: id, RunID: runID, Time: start,
			Source: Location{Endpoint: src.url, Bucket: src.bucket, Prefix: src.prefix}, Entries: entries}
		for _, e := range entries {
			m.Objects++
			m.Bytes += e.Size
		}
		if err = writeManifest(ctx, dst, m); err == nil {
			return backup.Snapshot{ID: id, ShortID: id, Time: start, Target: t.Name(), RunID: runID,
				Paths: []string{sourceURL(src)}, Bytes: m.Bytes, Files: m.Objects, Added: m.Bytes}, nil
		}
	}
	if ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if rerr := removePrefix(cctx, dst, prefix); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the incomplete snapshot (the next backup will): %w", rerr))
		}
	}
	return backup.Snapshot{}, err
}

// job is one object to copy: src, stored as dst; key is its key relative
// to the source prefix (the manifest's); want, for a restore, is its
// manifest entry. skipGone (a backup's) leaves the object out when it
// was deleted from the source after it was listed.
type job struct {
	src      minio.ObjectInfo
	key      string
	dst      string
	want     *Entry
	skipGone bool
}

// copyAll copies the jobs, p.parallel() at a time, and returns their
// entries sorted by key. The first failure cancels the rest.
func (p *Provider) copyAll(ctx context.Context, c *copier, jobs []job, progress backup.ProgressFunc) ([]Entry, error) {
	var total int64
	for _, j := range jobs {
		total += j.src.Size
	}
	var (
		mu      sync.Mutex
		entries = make([]Entry, 0, len(jobs))
		done    restic.Status
		lastPct = -1
	)
	done.TotalFiles, done.TotalBytes = int64(len(jobs)), total
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.parallel())
	for _, j := range jobs {
		g.Go(func() error {
			e, err := c.copyObject(gctx, j.src, j.dst, j.want)
			if err != nil && j.skipGone && errors.Is(err, errSourceGone) {
				return nil
			}
			if err != nil {
				return err
			}
			e.Key = j.key
			mu.Lock()
			defer mu.Unlock()
			entries = append(entries, e)
			done.FilesDone++
			done.BytesDone += e.Size
			if progress != nil {
				done.PercentDone = float64(done.FilesDone) / float64(max(1, done.TotalFiles))
				if pct := int(done.PercentDone * 100); pct != lastPct {
					lastPct = pct
					progress(done)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	sort.Slice(entries, func(i, k int) bool { return entries[i].Key < entries[k].Key })
	return entries, nil
}

// listAll lists every object of e's bucket under prefix.
func listAll(ctx context.Context, e *endpoint, prefix string) ([]minio.ObjectInfo, error) {
	var out []minio.ObjectInfo
	for o := range e.client.ListObjects(ctx, e.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, e.explain(o.Err)
		}
		out = append(out, o)
	}
	return out, nil
}

// removePrefix removes every object of e's bucket under prefix.
func removePrefix(ctx context.Context, e *endpoint, prefix string) error {
	objs := make(chan minio.ObjectInfo)
	var lerr error
	go func() {
		defer close(objs)
		for o := range e.client.ListObjects(ctx, e.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				lerr = o.Err
				return
			}
			select {
			case objs <- o:
			case <-ctx.Done():
				return
			}
		}
	}()
	var errs []error
	for r := range e.client.RemoveObjects(ctx, e.bucket, objs, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("remove %q: %w", r.ObjectName, e.explain(r.Err)))
	}
	if lerr != nil {
		errs = append(errs, e.explain(lerr))
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return errors.Join(errs...)
}

// List returns the target's complete snapshots (those with a manifest),
// oldest first, with their object count (Files) and bytes.
func (p *Provider) List(ctx context.Context, t backup.Target) ([]backup.Snapshot, error) {
	dst, err := connect("destination", t.Spec.Destination)
	if err != nil {
		return nil, err
	}
	lay, err := scan(ctx, dst, t.Name())
	if err != nil {
		return nil, err
	}
	src := &endpoint{url: t.Spec.Source.Endpoint, bucket: t.Spec.Source.Bucket, prefix: dirPrefix(t.Spec.Source.Prefix)}
	var out []backup.Snapshot
	for id, o := range lay.manifests {
		tm, err := time.Parse(idFormat, id)
		if err != nil {
			continue // not a snapshot of homelab's
		}
		st, err := dst.client.StatObject(ctx, dst.bucket, o.Key, minio.StatObjectOptions{})
		if err != nil {
			if minio.ToErrorResponse(err).Code == "NoSuchKey" {
				continue // pruned meanwhile
			}
			return nil, dst.explain(err)
		}
		n, _ := strconv.ParseInt(st.UserMetadata[metaObjects], 10, 64)
		b, _ := strconv.ParseInt(st.UserMetadata[metaBytes], 10, 64)
		// In this host's zone, as restic keeps a snapshot's time: the
		// retention's days, weeks, months are the host's (PlanRetention).
		out = append(out, backup.Snapshot{ID: id, ShortID: id, Time: tm.Local(), Target: t.Name(), RunID: st.UserMetadata[metaRun],
			Paths: []string{sourceURL(src)}, Files: n, Bytes: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// PlanPrune applies the target's retention to its snapshots' times with
// restic forget's rules (backup.PlanRetention).
func (p *Provider) PlanPrune(ctx context.Context, t backup.Target, protect []string) (backup.PrunePlan, error) {
	if t.Spec.Retention.Empty() {
		return backup.PrunePlan{Target: t.Name()}, fmt.Errorf("target %s has no retention rules: refusing to prune", t.Name())
	}
	snaps, err := p.List(ctx, t)
	if err != nil {
		return backup.PrunePlan{Target: t.Name()}, err
	}
	return backup.PlanRetention(t.Name(), snaps, t.Spec.Retention, protect)
}

// Prune removes the plan's snapshots: each one's manifest first (it is
// then no longer a snapshot), then its objects (what a prune killed
// mid-way leaves is an incomplete snapshot, which the next backup
// removes).
func (p *Provider) Prune(ctx context.Context, t backup.Target, plan backup.PrunePlan) error {
	if len(plan.Remove) == 0 {
		return nil
	}
	dst, err := connect("destination", t.Spec.Destination)
	if err != nil {
		return err
	}
	for _, s := range plan.Remove {
		if err := dst.client.RemoveObject(ctx, dst.bucket, manifestKey(dst, t.Name(), s.ID), minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("forget snapshot %s: %w", s.ID, dst.explain(err))
		}
		if err := removePrefix(ctx, dst, snapshotPrefix(dst, t.Name(), s.ID)); err != nil {
			return fmt.Errorf("remove snapshot %s: %w", s.ID, err)
		}
	}
	return nil
}

// Restore copies snapshot snap into dest.Bucket on the source's endpoint
// (created if missing; dest.InPlace: the source bucket), each object
// under its source key (source prefix + key), with its content type and
// user metadata, every copy checked against the manifest's size and MD5.
// With dest.Delete, objects under the source prefix that are not in the
// snapshot are removed afterwards (as restic restore --delete does);
// without it they are left alone. An in-place restore (an upgrade's
// rollback) always removes them, so that the source is the snapshot
// exactly, as the files provider's in-place restore makes it. A restore
// into the bucket and prefix that hold the snapshots (holdsSnapshots) is
// refused before anything is written.
func (p *Provider) Restore(ctx context.Context, t backup.Target, snap backup.Snapshot, dest backup.Destination, progress backup.ProgressFunc) error {
	bucket := dest.Bucket
	if dest.InPlace {
		bucket = t.Spec.Source.Bucket
	}
	if bucket == "" {
		return errors.New("restore needs a bucket (--to-bucket)")
	}
	loc := t.Spec.Source.S3Location
	loc.Bucket = bucket
	to, err := connect("restore", loc)
	if err != nil {
		return err
	}
	dst, err := connect("destination", t.Spec.Destination)
	if err != nil {
		return err
	}
	if holdsSnapshots(to, dst) {
		return fmt.Errorf("restore into bucket %s under prefix %q: that holds the snapshots (destination prefix %q); restore into another bucket", bucket, to.prefix, dst.prefix)
	}
	m, err := readManifest(ctx, dst, t.Name(), snap.ID)
	if err != nil {
		return err
	}
	ok, err := to.client.BucketExists(ctx, bucket)
	if err != nil {
		return to.explain(err)
	}
	if !ok {
		if err := to.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: loc.Region}); err != nil {
			return fmt.Errorf("create bucket: %w", to.explain(err))
		}
	}
	jobs, missing, err := restoreJobs(ctx, dst, m, to.prefix)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("snapshot %s is damaged: %d objects of its manifest are missing from the destination, first %q", snap.ID, len(missing), missing[0])
	}
	if _, err := p.copyAll(ctx, &copier{from: dst, to: to, partSize: p.PartSize}, jobs, progress); err != nil {
		return err
	}
	if !dest.Delete && !dest.InPlace {
		return nil
	}
	keep := map[string]bool{}
	for _, e := range m.Entries {
		keep[to.prefix+e.Key] = true
	}
	have, err := listAll(ctx, to, to.prefix)
	if err != nil {
		return err
	}
	for _, o := range have {
		if !keep[o.Key] {
			if err := to.client.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
				return fmt.Errorf("remove %q (not in the snapshot): %w", o.Key, to.explain(err))
			}
		}
	}
	return nil
}

// holdsSnapshots reports whether restore location to (its bucket and
// prefix) contains the destination's snapshots or lies inside them: the
// same endpoint (lab.SameEndpoint) and bucket, and one prefix containing the other. A
// restore there would write among the snapshots and, with Delete (or in
// place), remove them all, as none is in the snapshot restored.
func holdsSnapshots(to, dst *endpoint) bool {
	return lab.SameEndpoint(to.url, dst.url) && to.bucket == dst.bucket &&
		(strings.HasPrefix(to.prefix, dst.prefix) || strings.HasPrefix(dst.prefix, to.prefix))
}

// restoreJobs lists the snapshot's objects and pairs each manifest entry
// with its stored object, to be copied to prefix+key; missing are the
// entries whose object is gone.
func restoreJobs(ctx context.Context, dst *endpoint, m Manifest, prefix string) (jobs []job, missing []string, err error) {
	sp := snapshotPrefix(dst, m.Target, m.ID)
	objs, err := listAll(ctx, dst, sp)
	if err != nil {
		return nil, nil, err
	}
	stored := make(map[string]minio.ObjectInfo, len(objs))
	for _, o := range objs {
		stored[strings.TrimPrefix(o.Key, sp)] = o
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		o, ok := stored[e.Key]
		if !ok {
			missing = append(missing, e.Key)
			continue
		}
		jobs = append(jobs, job{src: o, key: e.Key, dst: prefix + e.Key, want: e})
	}
	return jobs, missing, nil
}

// drillBucketPrefix starts the names of target's drill buckets (bucket
// names allow no "_"; the target's part is cut to keep within 63).
func drillBucketPrefix(target string) string {
	t := strings.ReplaceAll(target, "_", "-")
	if len(t) > 21 {
		t = t[:21]
	}
	return "homelab-drill-" + t + "-"
}

// DrillBucket names the drill bucket of target that process pid of host
// (a HostID) makes, rnd telling apart its drills:
// homelab-drill-<target>-<host>-<pid>-<rnd>, the target's part with "-"
// for "_" and cut to 21 characters, so that the name keeps within S3's
// 63 with an 8-digit rnd.
func DrillBucket(target, host string, pid int, rnd string) string {
	return drillBucketPrefix(target) + host + "-" + strconv.Itoa(pid) + "-" + rnd
}

// HostID is the first 8 hex digits of the SHA-256 of this host's name
// (os.Hostname, the name restic gives a lock's host). A drill bucket
// carries it: several hosts may drill targets of the same name on one
// S3 endpoint, and a drill removes only the buckets of dead drills of
// its own host, where a process ID says something.
func HostID() string {
	h, _ := os.Hostname()
	sum := sha256.Sum256([]byte(h))
	return hex.EncodeToString(sum[:4])
}

// drillSuffix parses what follows drillBucketPrefix: the host (missing in
// the names of homelab before it named hosts), the pid and rnd.
var drillSuffix = regexp.MustCompile(`^(?:([0-9a-f]{8})-)?([0-9]+)-[0-9a-f]+$`)

// processAlive is restic.ProcessAlive, replaceable in tests.
var processAlive = restic.ProcessAlive

// drilling holds the names of the drill buckets this process's drills
// use now: a bucket named with this process's ID and not among them is
// a leftover (its removal failed), not a live drill's.
var drilling sync.Map

// Drill copies snap into a new throwaway bucket on the destination's
// endpoint (DrillBucket: homelab-drill-<target>-<host>-<pid>-<random>),
// reads every object back and compares it with the manifest (key, size,
// MD5, content type,
// user metadata), runs the target's checks (object: KEY is there;
// min_objects: N are), and removes the bucket, also on failure. An object
// missing from the stored snapshot or changed in it fails the
// "manifest" check. RTO is the copy's time. Drill buckets of the target
// whose homelab process is gone from this host (a drill killed mid-way)
// are removed first; one that cannot be is in Leftovers, and so is this drill's own
// bucket when its removal (deferred: rep is a named result, so the
// deferred removal's Leftovers are returned) fails.
func (p *Provider) Drill(ctx context.Context, t backup.Target, snap backup.Snapshot, runID string) (rep backup.DrillReport, err error) {
	dst, err := connect("destination", t.Spec.Destination)
	if err != nil {
		return rep, err
	}
	rep.Leftovers = removeDeadDrills(ctx, dst, t.Name())
	m, err := readManifest(ctx, dst, t.Name(), snap.ID)
	if err != nil {
		return rep, err
	}
	rnd := make([]byte, 4)
	rand.Read(rnd)
	name := DrillBucket(t.Name(), HostID(), os.Getpid(), hex.EncodeToString(rnd))
	throw := *dst
	throw.role, throw.bucket, throw.prefix = "drill", name, ""
	drilling.Store(name, true)
	defer drilling.Delete(name) // after the bucket's removal (deferred below)
	if err := dst.client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: t.Spec.Destination.Region}); err != nil {
		return rep, fmt.Errorf("create the drill bucket: %w", throw.explain(err))
	}
	rep.Place = "bucket " + name + " on " + dst.url
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if err := removeBucket(cctx, &throw); err != nil {
			rep.Leftovers = append(rep.Leftovers, rep.Place+": "+err.Error())
		}
	}()
	start := time.Now()
	jobs, missing, err := restoreJobs(ctx, dst, m, "")
	if err != nil {
		return rep, err
	}
	// Copy unchecked, against neither the manifest nor the stored ETag
	// (which an object damaged behind the server's back no longer
	// matches): a changed object is found by reading it back below, with
	// the others, so the check lists them all.
	for i := range jobs {
		jobs[i].want = nil
	}
	if _, err := p.copyAll(ctx, &copier{from: dst, to: &throw, partSize: p.PartSize, unchecked: true}, jobs, nil); err != nil {
		return rep, err
	}
	rep.RTO = time.Since(start)
	restored, err := listAll(ctx, &throw, "")
	if err != nil {
		return rep, err
	}
	problems, err := p.compare(ctx, &throw, m, restored)
	if err != nil {
		return rep, err
	}
	for _, k := range missing {
		problems = append(problems, fmt.Sprintf("%q is missing", k))
	}
	sort.Strings(problems)
	c := backup.CheckResult{Check: "manifest", OK: len(problems) == 0,
		Detail: fmt.Sprintf("%d objects, %d bytes restored, read back and compared", m.Objects, m.Bytes)}
	if !c.OK {
		shown := problems[:min(3, len(problems))]
		c.Detail = fmt.Sprintf("%d of %d objects differ from the manifest: %s", len(problems), m.Objects, strings.Join(shown, "; "))
		if len(problems) > len(shown) {
			c.Detail += fmt.Sprintf("; and %d more", len(problems)-len(shown))
		}
	}
	rep.Checks = append(rep.Checks, c)
	keys := make(map[string]bool, len(restored))
	for _, o := range restored {
		keys[o.Key] = true
	}
	for _, ck := range t.Spec.Drill.Checks {
		switch {
		case ck.Object != "":
			r := backup.CheckResult{Check: "object " + ck.Object, OK: keys[ck.Object], Detail: "present"}
			if !r.OK {
				r.Detail = "missing from the restored snapshot"
			}
			rep.Checks = append(rep.Checks, r)
		case ck.MinObjects > 0:
			rep.Checks = append(rep.Checks, backup.CheckResult{Check: fmt.Sprintf("min_objects %d", ck.MinObjects),
				OK: len(restored) >= ck.MinObjects, Detail: fmt.Sprintf("%d objects restored", len(restored))})
		}
	}
	return rep, nil
}

// compare reads every restored object back and returns how each differs
// from the manifest (size, MD5, content type, user metadata), plus the
// restored objects the manifest does not have.
func (p *Provider) compare(ctx context.Context, e *endpoint, m Manifest, restored []minio.ObjectInfo) ([]string, error) {
	byKey := make(map[string]*Entry, len(m.Entries))
	for i := range m.Entries {
		byKey[m.Entries[i].Key] = &m.Entries[i]
	}
	var (
		mu       sync.Mutex
		problems []string
	)
	add := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.parallel())
	for _, o := range restored {
		want := byKey[o.Key]
		if want == nil {
			add("%q is not in the manifest", o.Key)
			continue
		}
		g.Go(func() error {
			obj, err := e.client.GetObject(gctx, e.bucket, o.Key, minio.GetObjectOptions{})
			if err != nil {
				return e.explain(err)
			}
			defer obj.Close()
			st, err := obj.Stat()
			if err != nil {
				return e.explain(err)
			}
			h := md5.New()
			n, err := io.Copy(h, obj)
			if err != nil {
				return fmt.Errorf("read back %q: %w", o.Key, e.explain(err))
			}
			switch sum := hex.EncodeToString(h.Sum(nil)); {
			case n != want.Size:
				add("%q has %d bytes, the manifest %d", o.Key, n, want.Size)
			case sum != want.MD5:
				add("%q has MD5 %s, the manifest %s", o.Key, sum, want.MD5)
			case st.ContentType != want.ContentType:
				add("%q has content type %q, the manifest %q", o.Key, st.ContentType, want.ContentType)
			case !maps.Equal(st.UserMetadata, want.Metadata):
				add("%q has metadata %v, the manifest %v", o.Key, st.UserMetadata, want.Metadata)
			}
			return nil
		})
	}
	return problems, g.Wait()
}

// removeBucket removes every object of e's bucket and the bucket. A
// bucket that is not empty when it is removed is emptied again, up to 6
// times over about 3 seconds: a server-side copy that a failed or
// cancelled drill gave up on is finished by the server, which may write
// its object after the bucket was emptied.
func removeBucket(ctx context.Context, e *endpoint) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if err := removePrefix(ctx, e, ""); err != nil {
			return err
		}
		err := e.client.RemoveBucket(ctx, e.bucket)
		if err == nil {
			return nil
		}
		if minio.ToErrorResponse(err).Code != "BucketNotEmpty" || attempt == 6 {
			return e.explain(err)
		}
		select {
		case <-ctx.Done():
			return e.explain(err)
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// removeDeadDrills removes the target's drill buckets on dst's endpoint
// whose homelab process is gone, or that are this process's but no drill
// of it uses (a removal that failed: a daemon would keep them until it
// restarts), and returns those it could not remove, with the reason.
// Buckets of other live processes and of this one's running drills are
// left alone.
func removeDeadDrills(ctx context.Context, dst *endpoint, target string) []string {
	buckets, err := dst.client.ListBuckets(ctx)
	if err != nil {
		return nil // the keys may not list buckets; nothing to say then
	}
	prefix, host := drillBucketPrefix(target), HostID()
	var left []string
	for _, b := range buckets {
		rest, ok := strings.CutPrefix(b.Name, prefix)
		if !ok {
			continue
		}
		mm := drillSuffix.FindStringSubmatch(rest)
		if mm == nil {
			continue
		}
		if _, live := drilling.Load(b.Name); live {
			continue
		}
		if mm[1] != "" && mm[1] != host {
			continue // another host's: its process cannot be looked up here
		}
		if pid, err := strconv.Atoi(mm[2]); err != nil || pid != os.Getpid() && processAlive(pid) {
			continue
		}
		e := *dst
		e.bucket, e.prefix = b.Name, ""
		if err := removeBucket(ctx, &e); err != nil {
			left = append(left, "bucket "+b.Name+": "+err.Error())
		}
	}
	return slices.Clip(left)
}
