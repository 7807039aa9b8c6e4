package certs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"homelab/internal/atomicfile"
	"homelab/internal/lab"
	"homelab/internal/lock"
)

// LockName is the lock (under the lab's state_dir, see internal/lock)
// that Init, Issue, Rotate and RotateCA hold, so that two homelab
// processes never rotate at once. It cannot clash with a backup target's
// lock: target names have no dot.
const LockName = "certs.pki"

// DefaultVerifyInterval is the pause between TLS handshakes while waiting
// for a reloaded consumer to serve the expected certificate.
const DefaultVerifyInterval = 200 * time.Millisecond

// ErrExists is matched when Init or Issue would replace existing files
// without force.
var ErrExists = errors.New("exists")

// Manager issues and rotates the certificates of one lab.
type Manager struct {
	Lab *lab.Lab
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log gets notes about each step; nil discards them.
	Log *slog.Logger
	// VerifyInterval is the pause between handshakes; 0 means
	// DefaultVerifyInterval.
	VerifyInterval time.Duration
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (m *Manager) interval() time.Duration {
	if m.VerifyInterval > 0 {
		return m.VerifyInterval
	}
	return DefaultVerifyInterval
}

func (m *Manager) lock(ctx context.Context) (func(), error) {
	lk, err := lock.Acquire(ctx, m.Lab.StateDir, LockName, false)
	if be, ok := errors.AsType[*lock.BusyError](err); ok {
		holder := "another homelab process"
		if be.Holder != "" {
			holder += " (" + be.Holder + ")"
		}
		return nil, fmt.Errorf("certificates are busy: %s is changing them; retry when it is done: %w", holder, lock.ErrBusy)
	}
	if err != nil {
		return nil, err
	}
	return func() { lk.Release() }, nil
}

// loadCA reads the CA pair; a missing CA is ErrNoCA.
func (m *Manager) loadCA() (*Pair, error) {
	c := &m.Lab.Certs
	certPEM, err := os.ReadFile(c.CACert())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s does not exist)", ErrNoCA, c.CACert())
	}
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	keyPEM, err := os.ReadFile(c.CAKey())
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	p, err := ParsePair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", c.CACert(), err)
	}
	return p, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Init creates the CA: ca.key (0600), ca.pem and ca-bundle.pem (the CA
// alone) under the certs dir, each written atomically. An existing CA is
// an error matching ErrExists unless force; then the previous files are
// kept as .prev (leaves it signed no longer verify against the new one:
// RotateCA is the way to replace a CA in use).
func (m *Manager) Init(ctx context.Context, force bool) (Cert, error) {
	release, err := m.lock(ctx)
	if err != nil {
		return Cert{}, err
	}
	defer release()
	c := &m.Lab.Certs
	had := exists(c.CACert()) || exists(c.CAKey())
	if had && !force {
		return Cert{}, fmt.Errorf("CA %s %w: pass --force to replace it (leaves it signed would no longer verify; homelab cert rotate-ca replaces a CA in use)", c.CACert(), ErrExists)
	}
	now := m.now()
	ca, err := NewCA(c.CA.CommonName, c.CA.Validity, now)
	if err != nil {
		return Cert{}, err
	}
	var snap snapshot
	if err := saveCA(&snap, c); err != nil {
		return Cert{}, err
	}
	if err := snap.keepPrev(); err != nil {
		return Cert{}, err
	}
	if err := writeCA(c, ca, ca.CertPEM); err != nil {
		return Cert{}, errors.Join(err, snap.restore())
	}
	m.log().Info("CA created", "file", c.CACert(), "subject", ca.Cert.Subject.String(), "not_after", ca.Cert.NotAfter)
	return inspectCA(c, now), nil
}

// saveCA snapshots the CA's files.
func saveCA(s *snapshot, c *lab.Certs) error {
	if err := s.save(c.CAKey(), keyPerm, keyMask); err != nil {
		return err
	}
	if err := s.save(c.CACert(), certPerm, certMask); err != nil {
		return err
	}
	return s.save(c.CABundle(), certPerm, certMask)
}

// writeCA writes the CA key, the bundle, then the certificate.
func writeCA(c *lab.Certs, ca *Pair, bundle []byte) error {
	if err := atomicfile.Write(c.CAKey(), ca.KeyPEM, keyPerm, keyMask); err != nil {
		return err
	}
	if err := atomicfile.Write(c.CABundle(), bundle, certPerm, certMask); err != nil {
		return err
	}
	return atomicfile.Write(c.CACert(), ca.CertPEM, certPerm, certMask)
}

// Issue issues the named leaf with the CA and writes its key (0600),
// certificate and bundle (when configured) atomically, and its Traefik
// dynamic file when reload.traefik_file is set. It does not reload
// anything else (Rotate does). An existing certificate is an error
// matching ErrExists unless force; then the previous files are kept as
// .prev. Errors: an unknown name, ErrNoCA, an expired CA, a leaf that
// would outlive the CA.
func (m *Manager) Issue(ctx context.Context, name string, force bool) (Cert, error) {
	l, err := m.Lab.Certs.Leaf(name)
	if err != nil {
		return Cert{}, err
	}
	release, err := m.lock(ctx)
	if err != nil {
		return Cert{}, err
	}
	defer release()
	ca, err := m.loadCA()
	if err != nil {
		return Cert{}, err
	}
	if exists(l.CertFile) && !force {
		return Cert{}, fmt.Errorf("certificate %s %w: homelab cert rotate %s replaces it with a reload and a check, or pass --force", l.CertFile, ErrExists, name)
	}
	now := m.now()
	p, err := IssueLeaf(ca, l.SANs, l.Validity, now)
	if err != nil {
		return Cert{}, err
	}
	snap, err := saveLeaf(l)
	if err != nil {
		return Cert{}, err
	}
	if err := snap.keepPrev(); err != nil {
		return Cert{}, err
	}
	if err := swap(l, p); err != nil {
		return Cert{}, errors.Join(err, snap.restore())
	}
	if l.Reload.TraefikFile != "" {
		if err := WriteTraefikFile(m.Lab, l.Reload.TraefikFile); err != nil {
			return Cert{}, err
		}
	}
	m.log().Info("certificate issued", "leaf", name, "file", l.CertFile, "sha256", Fingerprint(p.Cert), "not_after", p.Cert.NotAfter)
	return inspectLeaf(&m.Lab.Certs, l, ca, now), nil
}

// saveLeaf snapshots a leaf's files.
func saveLeaf(l *lab.Leaf) (*snapshot, error) {
	s := &snapshot{}
	files := []struct {
		path       string
		perm, mask fs.FileMode
	}{{l.KeyFile, keyPerm, keyMask}, {l.CertFile, certPerm, certMask}, {l.BundleFile, keyPerm, keyMask}}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := s.save(f.path, f.perm, f.mask); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// swap writes p's key, certificate and bundle over l's files, each by an
// atomic rename.
func swap(l *lab.Leaf, p *Pair) error {
	if err := atomicfile.Write(l.KeyFile, p.KeyPEM, keyPerm, keyMask); err != nil {
		return err
	}
	if err := atomicfile.Write(l.CertFile, p.CertPEM, certPerm, certMask); err != nil {
		return err
	}
	if l.BundleFile != "" {
		return atomicfile.Write(l.BundleFile, p.Bundle(), keyPerm, keyMask)
	}
	return nil
}

// Result is the outcome of rotating one leaf.
type Result struct {
	Leaf      string `json:"leaf"`
	OldSHA256 string `json:"old_sha256,omitempty"`
	NewSHA256 string `json:"new_sha256,omitempty"`
	// NotAfter is the new certificate's expiry.
	NotAfter time.Time `json:"not_after"`
	// Reloaded says what reloaded the consumer ("" when nothing did).
	Reloaded string `json:"reloaded,omitempty"`
	// Verified says which handshake showed the new certificate.
	Verified string `json:"verified,omitempty"`
	// RolledBack is true when the previous pair was put back.
	RolledBack bool `json:"rolled_back"`
	// Err is a *RotateError, nil on success.
	Err error `json:"-"`
}

// Step names of a RotateError.
const (
	StepCheck    = "check" // the current pair: nothing was touched
	StepIssue    = "issue" // the new pair: nothing was touched
	StepKeepPrev = "keep previous"
	StepSwap     = "swap"
	StepReload   = "reload"
	StepVerify   = "verify"
)

// RotateError is a failed rotation of one leaf: the step that failed, why,
// and what the rollback achieved.
type RotateError struct {
	Leaf string
	Step string
	Err  error
	// Rollback says what was put back, and whether the previous
	// certificate is served again; "" when nothing had been changed.
	Rollback string
}

func (e *RotateError) Error() string {
	s := e.Leaf + ": " + e.Step + ": " + e.Err.Error()
	if e.Rollback != "" {
		s += "; " + e.Rollback
	}
	return s
}

func (e *RotateError) Unwrap() error { return e.Err }

// Rotate applies plan: it rotates each leaf the plan says to, one after
// the other, and returns a Result for each (in plan order) and the join of
// their errors (each a *RotateError). A plan with refusals is not applied
// at all: the error matches ErrRefused and nothing is changed.
//
// Per leaf: a new pair is issued and checked (key matches certificate,
// chain verifies) before anything is touched; the current files are kept
// as <file>.prev; key, certificate and bundle are replaced by atomic
// renames; the consumer is reloaded; the verify address must then serve
// the new certificate within verify.timeout. When the swap, the reload or
// the check fails, the previous files are put back byte for byte, the
// consumer is reloaded again and the handshake repeated, and the error
// says whether the previous certificate is served again.
func (m *Manager) Rotate(ctx context.Context, plan *Plan) ([]Result, error) {
	if r := plan.Refusals(); len(r) > 0 {
		return nil, refusedError(r)
	}
	rotations := plan.Rotations()
	if len(rotations) == 0 {
		return nil, nil
	}
	release, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	ca, err := m.loadCA()
	if err != nil {
		return nil, err
	}
	return m.rotateAll(ctx, ca, rotations)
}

func (m *Manager) rotateAll(ctx context.Context, ca *Pair, items []PlanItem) ([]Result, error) {
	var results []Result
	var errs []error
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: not rotated: %w", it.Leaf, err))
			continue
		}
		l, err := m.Lab.Certs.Leaf(it.Leaf)
		if err != nil {
			return results, err
		}
		res := m.rotateLeaf(ctx, ca, l)
		results = append(results, res)
		if res.Err != nil {
			errs = append(errs, res.Err)
		}
	}
	return results, errors.Join(errs...)
}

func (m *Manager) rotateLeaf(ctx context.Context, ca *Pair, l *lab.Leaf) (res Result) {
	res.Leaf = l.Name
	log := m.log().With("leaf", l.Name)
	fail := func(step string, err error, rollback string) Result {
		res.Err = &RotateError{Leaf: l.Name, Step: step, Err: err, Rollback: rollback}
		return res
	}
	snap, err := saveLeaf(l)
	if err != nil {
		return fail(StepCheck, err, "")
	}
	old, err := ParsePair(snap.get(l.CertFile), snap.get(l.KeyFile))
	if err != nil {
		return fail(StepCheck, fmt.Errorf("%w: current pair %s, %s: %w", ErrRefused, l.CertFile, l.KeyFile, err), "")
	}
	res.OldSHA256 = Fingerprint(old.Cert)
	p, err := IssueLeaf(ca, l.SANs, l.Validity, m.now())
	if err != nil {
		return fail(StepIssue, err, "")
	}
	res.NewSHA256, res.NotAfter = Fingerprint(p.Cert), p.Cert.NotAfter
	if err := snap.keepPrev(); err != nil {
		return fail(StepKeepPrev, err, "")
	}
	if err := swap(l, p); err != nil {
		rb := m.rollback(ctx, l, snap, res.OldSHA256, false)
		res.RolledBack = true
		return fail(StepSwap, err, rb)
	}
	log.Info("swapped", "sha256", res.NewSHA256, "previous", l.CertFile+".prev")
	did, err := reload(ctx, m.Lab, l)
	if err != nil {
		rb := m.rollback(ctx, l, snap, res.OldSHA256, true)
		res.RolledBack = true
		return fail(StepReload, err, rb)
	}
	res.Reloaded = did
	if did != "" {
		log.Info("reloaded", "how", did)
	}
	if err := waitServed(ctx, l, res.NewSHA256, "the new certificate", m.interval(), m.resender(ctx, l)); err != nil {
		rb := m.rollback(ctx, l, snap, res.OldSHA256, true)
		res.RolledBack = true
		return fail(StepVerify, err, rb)
	}
	if l.Verify.Address != "" {
		res.Verified = l.Verify.Address + " serves the new certificate"
		log.Info("verified", "address", l.Verify.Address)
	}
	return res
}

// rollback puts the snapshot back and, when the consumer had been told
// about the new pair, reloads it again and checks that the previous
// certificate (fingerprint oldFP) is served. It runs even when ctx is
// cancelled. It returns what it achieved, in words.
func (m *Manager) rollback(ctx context.Context, l *lab.Leaf, snap *snapshot, oldFP string, reloaded bool) string {
	ctx = context.WithoutCancel(ctx)
	log := m.log().With("leaf", l.Name)
	if err := snap.restore(); err != nil {
		log.Error("rollback failed", "err", err)
		return fmt.Sprintf("ROLLBACK FAILED: %v; the previous pair is kept as %s.prev and %s.prev", err, l.CertFile, l.KeyFile)
	}
	log.Info("previous certificate files put back")
	if !reloaded {
		return "rolled back to the previous certificate files"
	}
	_, rerr := reload(ctx, m.Lab, l)
	verr := waitServed(ctx, l, oldFP, "the previous certificate", m.interval(), m.resender(ctx, l))
	checked := l.Verify.Address != ""
	switch {
	case rerr == nil && verr == nil && checked:
		return "rolled back to the previous certificate, which is served again"
	case rerr == nil && verr == nil:
		return "rolled back to the previous certificate and reloaded"
	case verr == nil && checked:
		return fmt.Sprintf("rolled back to the previous certificate files (reloading failed again: %v); the previous certificate is still served", rerr)
	case verr == nil:
		return fmt.Sprintf("rolled back to the previous certificate files, but reloading failed again: %v", rerr)
	case rerr != nil:
		return fmt.Sprintf("rolled back to the previous certificate files, but reloading failed again (%v) and %v", rerr, verr)
	}
	return fmt.Sprintf("rolled back to the previous certificate files and reloaded, but %v", verr)
}

// resender returns what repeats l's reload while the check waits: the
// signal of pid_file and container reloads (nil for other kinds, which
// are not repeated).
func (m *Manager) resender(ctx context.Context, l *lab.Leaf) func() error {
	switch l.Reload.Kind() {
	case "pid_file":
		return func() error {
			// A signal the consumer blocks or has pending is still to be
			// acted on: sending it again would only queue a second reload
			// right behind the one under way (HAProxy's master blocks
			// SIGUSR2 while it reloads; a reload right after it finds the
			// new worker still starting, cannot take over its listening
			// sockets and binds new ones, which is not seamless).
			if pid, err := readPID(l.Reload.PIDFile); err == nil {
				if busy, err := signalWaiting(pid, signals[l.Reload.Signal]); err == nil && busy {
					m.log().Info("reload not repeated: the signal is still blocked or pending", "leaf", l.Name, "pid", pid)
					return nil
				}
			}
			did, err := reload(ctx, m.Lab, l)
			m.log().Info("reload repeated", "leaf", l.Name, "how", did, "err", err)
			return err
		}
	case "container":
		return func() error {
			did, err := reload(ctx, m.Lab, l)
			m.log().Info("reload repeated", "leaf", l.Name, "how", did, "err", err)
			return err
		}
	}
	return nil
}

// CAResult is the outcome of RotateCA.
type CAResult struct {
	// Old and New are the previous and the new CA.
	Old Cert `json:"old"`
	New Cert `json:"new"`
	// Bundle holds the new CA followed by the old one, for clients to
	// trust during the transition.
	Bundle string `json:"bundle"`
	// Leaves are the re-issued leaves, in plan order.
	Leaves []Result `json:"leaves"`
}

// RotateCA applies plan: a new CA replaces the current one (whose files
// are kept as ca.pem.prev and ca.key.prev), ca-bundle.pem becomes the new
// CA followed by the old one, and every issued leaf is re-issued by the
// new CA and rotated as by Rotate (swap, reload, verify, rollback). A
// plan with refusals is not applied (ErrRefused). A leaf whose rotation
// fails keeps its previous certificate, signed by the old CA, which stays
// trusted through the bundle; status reports it and a later `cert rotate`
// re-issues it. The error joins the leaves' errors.
func (m *Manager) RotateCA(ctx context.Context, plan *CAPlan) (CAResult, error) {
	res := CAResult{Old: plan.Current, Bundle: plan.Bundle}
	if r := plan.Refusals(); len(r) > 0 {
		return res, refusedError(r)
	}
	release, err := m.lock(ctx)
	if err != nil {
		return res, err
	}
	defer release()
	c := &m.Lab.Certs
	old, err := m.loadCA()
	if err != nil {
		return res, err
	}
	if Fingerprint(old.Cert) != plan.Current.SHA256 {
		return res, fmt.Errorf("the CA changed since the plan was made (sha256 %s, planned %s): run again", short(Fingerprint(old.Cert)), short(plan.Current.SHA256))
	}
	now := m.now()
	ca, err := NewCA(c.CA.CommonName, c.CA.Validity, now)
	if err != nil {
		return res, err
	}
	var snap snapshot
	if err := saveCA(&snap, c); err != nil {
		return res, err
	}
	if err := snap.keepPrev(); err != nil {
		return res, err
	}
	if err := writeCA(c, ca, append(append([]byte(nil), ca.CertPEM...), old.CertPEM...)); err != nil {
		return res, errors.Join(err, snap.restore())
	}
	m.log().Info("CA replaced", "subject", ca.Cert.Subject.String(), "sha256", Fingerprint(ca.Cert), "bundle", c.CABundle())
	res.New = inspectCA(c, now)
	res.Leaves, err = m.rotateAll(ctx, ca, (&Plan{Items: plan.Leaves}).Rotations())
	if err != nil {
		return res, fmt.Errorf("the CA was replaced, but some leaves were not re-issued and still use the previous CA (trusted through %s; homelab cert rotate re-issues them): %w", c.CABundle(), err)
	}
	return res, nil
}
