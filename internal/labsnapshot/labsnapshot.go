package labsnapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"homelab/internal/backup"
	"homelab/internal/catalog"
	"homelab/internal/certs"
	"homelab/internal/deploy"
	"homelab/internal/lab"
	"homelab/internal/lock"
	"homelab/internal/runtime"
	"homelab/internal/saga"
	"homelab/internal/upgrade"
)

// Saga kinds and the subject of every lab-snapshot saga. A kind reads as
// the command that resumes it: "homelab snapshot create --resume ID".
const (
	KindCreate  = "snapshot create"
	KindRestore = "snapshot restore"
	Subject     = "lab-snapshots"
)

// DefaultHealthyWithin bounds the health gate of a service without an
// upgrade section (whose healthy_within is used otherwise).
const DefaultHealthyWithin = 2 * time.Minute

// ErrNotComplete is returned (wrapped) by PlanRestore for a lab snapshot
// that is not complete.
var ErrNotComplete = errors.New("lab snapshot is not complete")

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// CheckName returns an error when name cannot name a lab snapshot: 1 to
// 100 letters, digits, '.', '_' or '-', starting with a letter or digit.
func CheckName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("lab snapshot name %q: use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Manager creates, checks, restores and deletes the lab snapshots of one
// lab.
type Manager struct {
	Lab *lab.Lab
	// Backups takes and restores the members; its Catalog must be a
	// catalog.LabSnapshots and a catalog.Journal (the SQLite catalog is).
	Backups *backup.Manager
	// Upgrader reads and sets versions and is the health gate; it shares
	// Backups.
	Upgrader *upgrade.Upgrader
	// Deployer reads the serving color of the blue/green services and
	// flips one back (a fast rollback) on restore; nil when the lab has
	// none.
	Deployer *deploy.Deployer
	Now      func() time.Time
	Log      *slog.Logger
	// Progress gets every journal row's change of state; Note one-line
	// notes of what a step does. Either may be nil.
	Progress func(id string, st saga.StepRecord)
	Note     func(msg string)
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

func (m *Manager) note(format string, args ...any) {
	if m.Note != nil {
		m.Note(fmt.Sprintf(format, args...))
	}
}

func (m *Manager) store() (catalog.LabSnapshots, error) {
	s, ok := m.Backups.Catalog.(catalog.LabSnapshots)
	if !ok {
		return nil, errors.New("the catalog keeps no lab snapshots")
	}
	return s, nil
}

func (m *Manager) journal() (catalog.Journal, error) {
	j, ok := m.Backups.Catalog.(catalog.Journal)
	if !ok {
		return nil, errors.New("the catalog keeps no saga journal")
	}
	return j, nil
}

func (m *Manager) runner() (*saga.Runner, error) {
	j, err := m.journal()
	if err != nil {
		return nil, err
	}
	return &saga.Runner{Journal: j, StateDir: m.Lab.StateDir, Now: m.Now, Log: m.Log, Progress: m.Progress}, nil
}

func (m *Manager) runtimeOf(name string) (*lab.Service, runtime.Runtime, error) {
	return m.Upgrader.Service(name)
}

// StopOrder is the services the targets' stop lists name, each once, in
// the order the first stop list naming it gives (targets in the order
// given): the order they are stopped in; they start in reverse.
func StopOrder(l *lab.Lab, targets []string) []string {
	var out []string
	for _, t := range targets {
		if b := l.Backups[t]; b != nil {
			for _, s := range b.Stop {
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// holdServices takes the upgrade locks (saga.LockName) of services, never
// waiting, so that no upgrade runs on them while a lab-snapshot saga stops
// and starts them, and tells the backup manager that this process holds
// them. The returned func releases them.
func (m *Manager) holdServices(ctx context.Context, services []string) (func(), error) {
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = saga.LockName(s)
	}
	release, err := lock.AcquireAll(ctx, m.Lab.StateDir, names, false)
	if err != nil {
		return nil, fmt.Errorf("a service of the lab snapshot is being upgraded (or another homelab holds it): %w", err)
	}
	before := m.Backups.Upgrading
	m.Backups.Upgrading = append(slices.Clone(before), services...)
	return func() {
		m.Backups.Upgrading = before
		release()
	}, nil
}

// stoppedKey is journalled by "stop services": the services that ran and
// were stopped, in stop order.
const stoppedKey = "stopped"

const stopStep = "stop services"

// stopServices stops those of services that run, journalling them first.
func (m *Manager) stopServices(ctx context.Context, sc *saga.StepContext, services []string) error {
	running, err := m.Upgrader.Running(ctx, services)
	if err != nil {
		return err
	}
	if err := sc.Set(stoppedKey, strings.Join(running, ",")); err != nil {
		return err
	}
	return m.Upgrader.StopAll(ctx, running)
}

// stopped returns the services "stop services" journalled as stopped.
func stopped(sc *saga.StepContext) []string {
	v, _ := sc.Get(stopStep, stoppedKey)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// startServices starts names in reverse order and, with gate, waits until
// each is healthy.
func (m *Manager) startServices(ctx context.Context, names []string, gate bool) error {
	if err := m.Upgrader.StartAll(ctx, names); err != nil || !gate {
		return err
	}
	return m.gate(ctx, names)
}

// gate waits until each of names is healthy, in start order.
func (m *Manager) gate(ctx context.Context, names []string) error {
	return m.Upgrader.GateAll(ctx, names, DefaultHealthyWithin)
}

// stopAll stops names in order (a compensation: the restores under it must
// not race a running service).
func (m *Manager) stopAll(ctx context.Context, names []string) error {
	return m.Upgrader.StopAll(ctx, names)
}

// capture reads what a lab snapshot records besides its members: the
// services' versions, the blue/green services' serving colors, the lab
// file and the certificates' fingerprints.
func (m *Manager) capture(ctx context.Context) (catalog.LabSnapshot, error) {
	ls := catalog.LabSnapshot{Versions: map[string]string{}}
	for _, name := range slices.Sorted(maps.Keys(m.Lab.Services)) {
		v, ok, err := m.Upgrader.VersionOf(ctx, m.Lab.Services[name])
		if err != nil {
			return ls, err
		}
		if ok {
			ls.Versions[name] = v
		}
	}
	colors, err := m.servingColors(ctx)
	if err != nil {
		return ls, err
	}
	ls.Colors = colors
	ls.Certs, ls.LabFile, err = m.labState()
	return ls, err
}

// servingColors reads the serving color and version of each blue/green
// service that serves (deploy.Deployer.State: the catalog's deploy record,
// which HAProxy's live configuration must agree with; an error says how
// they differ). nil when none serves.
func (m *Manager) servingColors(ctx context.Context) (map[string]catalog.ServingColor, error) {
	var out map[string]catalog.ServingColor
	for _, name := range BlueGreen(m.Lab) {
		if m.Deployer == nil {
			return nil, fmt.Errorf("service %s is blue/green but no deployer reads its serving color", name)
		}
		st, err := m.Deployer.State(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("service %s: its serving color: %w", name, err)
		}
		if st.Active.Color == "" {
			continue
		}
		if out == nil {
			out = map[string]catalog.ServingColor{}
		}
		out[name] = catalog.ServingColor{Color: st.Active.Color, Version: st.Active.Version}
	}
	return out, nil
}

// labState reads the lab file and the SHA-256 fingerprints of the
// certificates that exist ("ca" and the leaves' names).
func (m *Manager) labState() (fingerprints map[string]string, labFile string, err error) {
	b, err := os.ReadFile(m.Lab.Path)
	if err != nil {
		return nil, "", fmt.Errorf("copy the lab file: %w", err)
	}
	fingerprints = map[string]string{}
	rep, err := certs.Status(m.Lab, m.now())
	if err != nil {
		return nil, "", err
	}
	for _, c := range append([]certs.Cert{rep.CA}, rep.Leaves...) {
		if c.Exists && c.SHA256 != "" {
			fingerprints[c.Name] = c.SHA256
		}
	}
	return fingerprints, string(b), nil
}

// record records the lab snapshot name as creating, made by the running
// saga; a record this saga made before (a step run again) is kept.
func (m *Manager) record(ctx context.Context, sc *saga.StepContext, name, note string) error {
	st, err := m.store()
	if err != nil {
		return err
	}
	ls, err := m.capture(ctx)
	if err != nil {
		return err
	}
	ls.Name, ls.Note, ls.State, ls.SagaID, ls.Created = name, note, catalog.LabSnapshotCreating, sc.SagaID(), m.now()
	err = st.CreateLabSnapshot(ctx, ls)
	if errors.Is(err, catalog.ErrExists) {
		if old, gerr := st.LabSnapshot(ctx, name); gerr == nil && old.SagaID == sc.SagaID() {
			return nil
		}
	}
	return err
}

// backupMember backs up target and adds it as a member of name,
// journalling its restic snapshot ID under saga.SnapshotKey first.
func (m *Manager) backupMember(ctx context.Context, sc *saga.StepContext, name, target string) error {
	st, err := m.store()
	if err != nil {
		return err
	}
	m.note("backing up %s", target)
	rep := m.Backups.Backup(ctx, target)
	id, err := rep.Whole()
	if err != nil {
		return fmt.Errorf("back up %s: %w", target, err)
	}
	if err := sc.Set(saga.SnapshotKey(target), id); err != nil {
		return err
	}
	m.note("%s: restic snapshot %s", target, short(id))
	return st.AddLabSnapshotMember(ctx, name, catalog.LabSnapshotMember{Target: target, Repository: rep.Run.Repository,
		SnapshotID: id, Time: rep.Run.SnapshotTime, Bytes: rep.Run.Bytes, Files: rep.Run.Files})
}

// markIncomplete marks name incomplete, with why, the saga's error and its
// ID, if
// the running saga recorded it and it is still creating (an Undo:
// idempotent, nothing to do when no record was made, and a lab snapshot
// of that name made by another saga is left alone).
func (m *Manager) markIncomplete(ctx context.Context, sc *saga.StepContext, name, why string) error {
	st, err := m.store()
	if err != nil {
		return err
	}
	ls, err := st.LabSnapshot(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil || ls.State != catalog.LabSnapshotCreating || ls.SagaID != sc.SagaID() {
		return err
	}
	// The saga journals why it did not finish before it compensates.
	if j, jerr := m.journal(); jerr == nil {
		if rec, jerr := j.Saga(ctx, sc.SagaID()); jerr == nil && rec.Error != "" {
			why += ": " + rec.Error
		}
	}
	return st.FinishLabSnapshot(ctx, name, catalog.LabSnapshotIncomplete, m.now(), fmt.Sprintf("%s (saga %s)", why, sc.SagaID()))
}

func (m *Manager) complete(ctx context.Context, name string) error {
	st, err := m.store()
	if err != nil {
		return err
	}
	return st.FinishLabSnapshot(ctx, name, catalog.LabSnapshotComplete, m.now(), "")
}

// Resume finishes the unfinished lab-snapshot saga id by compensating it
// (saga.Runner.Resume with saga.Compensate): an interrupted create ends
// incomplete with its services running again; an interrupted restore puts
// the lab back in its pre-restore state. A saga already over is returned
// as it is.
func (m *Manager) Resume(ctx context.Context, id string) (saga.Record, error) {
	j, err := m.journal()
	if err != nil {
		return saga.Record{}, err
	}
	rec, err := j.Saga(ctx, id)
	if err != nil {
		return saga.Record{}, err
	}
	var steps []saga.Step
	var services []string
	switch rec.Kind {
	case KindCreate:
		p, err := paramsOf[CreateParams](rec)
		if err != nil {
			return rec, err
		}
		steps, services = m.createSteps(p), p.Services
	case KindRestore:
		p, err := paramsOf[RestorePlan](rec)
		if err != nil {
			return rec, err
		}
		steps, services = m.restoreSteps(p), p.Services
	default:
		return rec, fmt.Errorf("saga %s is a %s, not a lab snapshot's", id, rec.Kind)
	}
	if rec.State.Final() {
		return rec, nil
	}
	r, err := m.runner()
	if err != nil {
		return rec, err
	}
	release, err := m.holdServices(ctx, services)
	if err != nil {
		return rec, err
	}
	defer release()
	return r.Resume(ctx, id, steps, saga.Compensate)
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
