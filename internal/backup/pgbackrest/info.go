package pgbackrest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/execx"
)

// Info is one stanza of `pgbackrest info --output=json`, the fields homelab
// reads.
type Info struct {
	Name   string `json:"name"`
	Status struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
	// Repo is each repository's status: the cause of a stanza status
	// 99 ("other") is in its message.
	Repo []struct {
		Key    int `json:"key"`
		Status struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	} `json:"repo"`
	Archive []struct {
		ID  string `json:"id"`
		Min string `json:"min"`
		Max string `json:"max"`
	} `json:"archive"`
	Backup []Set `json:"backup"`
}

// Set is one backup set.
type Set struct {
	Label   string `json:"label"`
	Type    string `json:"type"` // full, diff, incr
	Prior   string `json:"prior"`
	Error   bool   `json:"error"`
	Archive struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"archive"`
	LSN struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"lsn"`
	Timestamp struct {
		Start int64 `json:"start"`
		Stop  int64 `json:"stop"`
	} `json:"timestamp"`
	Info struct {
		Size       int64 `json:"size"`
		Delta      int64 `json:"delta"`
		Repository struct {
			Size  int64 `json:"size"`
			Delta int64 `json:"delta"`
		} `json:"repository"`
	} `json:"info"`
	Reference []string `json:"reference"`
	// Annotation is the set's --annotation key/values: homelab-run is
	// the homelab run that took it.
	Annotation map[string]string `json:"annotation"`
}

// RunAnnotation is the annotation key of the homelab run ID a set was
// taken by (pgbackrest backup --annotation=homelab-run=<run ID>).
const RunAnnotation = "homelab-run"

// LabelType is the backup type of a pgBackRest backup label: full for
// "20261206-104100F", diff and incr for "..._20261206-120000D" and
// "..._20261206-120000I"; "" for anything else.
func LabelType(label string) string {
	switch {
	case strings.HasSuffix(label, "F") && !strings.Contains(label, "_"):
		return TypeFull
	case strings.HasSuffix(label, "D"):
		return TypeDiff
	case strings.HasSuffix(label, "I"):
		return TypeIncr
	}
	return ""
}

// RunType is the backup type of a catalog run of a pgbackrest target:
// its backup label's (LabelType) when it made one, else the type it asked
// for, kept in its run ID (backup.TypedRunID); "" when neither says (a
// failed run of a target whose type pgBackRest chose).
func RunType(r catalog.Run) string {
	if t := LabelType(r.SnapshotID); t != "" {
		return t
	}
	if t := backup.RunIDType(r.RunID); Rank(t) > 0 {
		return t
	}
	return ""
}

// TypeState reads a target's backup runs, newest first (the catalog's
// order), for backup type typ: good is the newest ok or partial run that
// holds at least typ (Rank of its RunType at least Rank(typ): a full one
// counts for a diff or incr), nil if none; failed is the newest failed run
// of type typ with no such good run after it, nil if none (a good incr
// after a failed full leaves the full failed). Runs still running or
// interrupted count for neither.
func TypeState(runs []catalog.Run, typ string) (good, failed *catalog.Run) {
	for i := range runs {
		r := &runs[i]
		switch r.Result {
		case catalog.ResultOK, catalog.ResultPartial:
			if Rank(RunType(*r)) >= Rank(typ) {
				return r, failed
			}
		case catalog.ResultFailed:
			if failed == nil && RunType(*r) == typ {
				failed = r
			}
		}
	}
	return nil, failed
}

// Rank orders the backup types by what they hold: a full backup (3)
// does what a diff (2) does, and a diff what an incr (1) does; 0 for
// anything else.
func Rank(typ string) int {
	switch typ {
	case TypeFull:
		return 3
	case TypeDiff:
		return 2
	case TypeIncr:
		return 1
	}
	return 0
}

// Start and Stop are the backup's times.
func (s Set) Start() time.Time { return time.Unix(s.Timestamp.Start, 0).UTC() }
func (s Set) Stop() time.Time  { return time.Unix(s.Timestamp.Stop, 0).UTC() }

// Snapshot converts a set for the manager: ID and ShortID the label, Time
// the start, RunID its homelab-run annotation, Bytes the cluster's size,
// Added the repository delta.
func (s Set) Snapshot(target, dataDir string) backup.Snapshot {
	tags := []string{backup.TagHomelab, backup.TagTargetPrefix + target, "type:" + s.Type,
		"wal:" + s.Archive.Start + "-" + s.Archive.Stop, "stop:" + s.Stop().Format(time.RFC3339)}
	if s.Prior != "" {
		tags = append(tags, "prior:"+s.Prior)
	}
	return backup.Snapshot{ID: s.Label, ShortID: s.Label, Time: s.Start(), Target: target, RunID: s.Annotation[RunAnnotation],
		Paths: []string{dataDir}, Tags: tags, Bytes: s.Info.Size, Added: s.Info.Repository.Delta}
}

// info reads the stanza's info. A stanza that is not in the repository
// (pgBackRest's status 1, "missing stanza path", or 3, "missing stanza
// data": not created yet, or a repository elsewhere than the lab says,
// such as a bucket that does not exist) is an error naming the fix, and
// so is status 99 ("other"); a stanza with no backup yet (2) is not.
func (r *runner) info(ctx context.Context) (Info, error) {
	w := &watch{s3: r.b.PgBackRest.Repo.IsS3()}
	out, err := r.exec(ctx, w, "info", "--output=json")
	if err != nil {
		return Info{}, fmt.Errorf("target %s: info: %w", r.b.Name, err)
	}
	var all []Info
	if err := json.Unmarshal(out, &all); err != nil {
		return Info{}, fmt.Errorf("target %s: parse pgbackrest info: %w", r.b.Name, err)
	}
	for _, in := range all {
		if in.Name == r.b.PgBackRest.Stanza {
			// The messages are stdout, which execx does not redact.
			redact := func(msg string) string { return execx.Redact(msg, r.sec.values()...) }
			switch in.Status.Code {
			case 1, 3:
				return Info{}, fmt.Errorf("target %s: %w", r.b.Name, r.noStanza("pgbackrest info: "+redact(in.Status.Message)))
			case 99:
				// "other": the repository's status says what.
				msg := redact(in.Status.Message)
				for _, repo := range in.Repo {
					if repo.Status.Code != 0 {
						msg = redact(repo.Status.Message)
						w.line(msg)
					}
				}
				err := fmt.Errorf("pgbackrest info: %s", strings.Join(strings.Fields(msg), " "))
				if s3 := r.s3Error(w, err); s3 != nil {
					err = s3
				}
				return Info{}, fmt.Errorf("target %s: %w", r.b.Name, err)
			}
			slices.SortStableFunc(in.Backup, func(a, b Set) int { return strings.Compare(a.Label, b.Label) })
			return in, r.saveSecrets()
		}
	}
	return Info{}, fmt.Errorf("target %s: pgbackrest info has no stanza %s", r.b.Name, r.b.PgBackRest.Stanza)
}

// Window is the recoverable window of a target: from the start of its
// oldest backup to the newest archived WAL segment, which reached the
// repository at To.
type Window struct {
	From    time.Time `json:"from"`
	WALFrom string    `json:"wal_from"`
	WALTo   string    `json:"wal_to"` // newest archived segment
	// To is when WALTo reached the repository (its file's modification
	// time, whole seconds, as pgBackRest's repo-ls gives it); zero when
	// there is no archived segment.
	To      time.Time `json:"to,omitzero"`
	Backups int       `json:"backups"`
	// archiveID is the archive (PostgreSQL version and pgBackRest's
	// history number, "15-1") that holds WALTo.
	archiveID string
}

// WindowOf computes the window from info, without To; zero when there is
// no backup.
func WindowOf(in Info) Window {
	var w Window
	if len(in.Backup) == 0 {
		return w
	}
	w.From, w.Backups = in.Backup[0].Start(), len(in.Backup)
	w.WALFrom = in.Backup[0].Archive.Start
	for _, a := range in.Archive {
		if a.Max > w.WALTo {
			w.WALTo, w.archiveID = a.Max, a.ID
		}
	}
	return w
}

// archivedAt is when segment wal of archive id reached the repository:
// the time `pgbackrest repo-ls --output=json` gives its file
// (archive/<stanza>/<id>/<first 16 hex digits>/<wal>-<sha1>.<ext>).
func (r *runner) archivedAt(ctx context.Context, id, wal string) (time.Time, error) {
	if len(wal) != 24 || id == "" {
		return time.Time{}, fmt.Errorf("target %s: no archived WAL segment to look up (%q %q)", r.b.Name, id, wal)
	}
	c := r.cmd("repo-ls", "--output=json", "--filter=^"+wal)
	c.Args = append(c.Args, "archive/"+r.b.PgBackRest.Stanza+"/"+id+"/"+wal[:16])
	w := &watch{s3: r.b.PgBackRest.Repo.IsS3()}
	c.OnStderr = w.line
	out, err := execx.Output(ctx, c)
	if err = r.wrap(err, w); err != nil {
		return time.Time{}, fmt.Errorf("target %s: repo-ls: %w", r.b.Name, err)
	}
	var files map[string]struct {
		Type string `json:"type"`
		Time int64  `json:"time"`
	}
	if err := json.Unmarshal(out, &files); err != nil {
		return time.Time{}, fmt.Errorf("target %s: parse pgbackrest repo-ls: %w", r.b.Name, err)
	}
	var at int64
	for name, f := range files {
		// A segment pushed twice (a retry) may have two files: the newest.
		if f.Type == "file" && strings.HasPrefix(name, wal+"-") && !strings.HasSuffix(name, ".tmp") && f.Time > at {
			at = f.Time
		}
	}
	if at == 0 {
		return time.Time{}, fmt.Errorf("target %s: WAL segment %s is not in the repository's archive %s", r.b.Name, wal, id)
	}
	return time.Unix(at, 0).UTC(), nil
}
