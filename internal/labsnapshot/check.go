package labsnapshot

import (
	"context"
	"fmt"

	"homelab/internal/catalog"
)

// MemberState is a member of a lab snapshot as its repository has it now.
type MemberState struct {
	catalog.LabSnapshotMember
	// Exists: the repository lists the restic snapshot (checked, not
	// assumed). False with Error set when it could not be checked.
	Exists bool `json:"exists"`
	// Drilled: its newest restore drill passed.
	Drilled bool   `json:"drilled"`
	Error   string `json:"error,omitempty"`
}

// Checked is a lab snapshot with its members checked against their
// repositories.
type Checked struct {
	catalog.LabSnapshot
	Members []MemberState `json:"members"`
	// Intact: every member exists. Drilled: every member passed a drill.
	Intact  bool `json:"intact"`
	Drilled bool `json:"drilled"`
}

// Missing returns the members that are not (known to be) in their
// repositories.
func (c Checked) Missing() []MemberState {
	var out []MemberState
	for _, m := range c.Members {
		if !m.Exists {
			out = append(out, m)
		}
	}
	return out
}

// checker lists each target's snapshots once (backup.Manager.List, with
// their newest drills) for any number of lab snapshots.
type checker struct {
	m     *Manager
	lists map[string]map[string]bool // target -> snapshot ID -> drilled
	errs  map[string]error
}

func (m *Manager) newChecker() *checker {
	return &checker{m: m, lists: map[string]map[string]bool{}, errs: map[string]error{}}
}

func (c *checker) list(ctx context.Context, target string) (map[string]bool, error) {
	if l, ok := c.lists[target]; ok {
		return l, c.errs[target]
	}
	rows, err := c.m.Backups.List(ctx, target)
	l := map[string]bool{}
	for _, r := range rows {
		l[r.ID] = r.Drill != nil && r.Drill.Result == catalog.ResultOK
	}
	c.lists[target], c.errs[target] = l, err
	return l, err
}

func (c *checker) check(ctx context.Context, ls catalog.LabSnapshot) Checked {
	out := Checked{LabSnapshot: ls, Intact: true, Drilled: len(ls.Members) > 0}
	for _, mem := range ls.Members {
		st := MemberState{LabSnapshotMember: mem}
		spec := c.m.Lab.Backups[mem.Target]
		switch {
		case spec == nil:
			st.Error = fmt.Sprintf("target %s is no longer in the lab file", mem.Target)
		case spec.Repository != mem.Repository:
			st.Error = fmt.Sprintf("target %s now uses repository %s, not %s", mem.Target, spec.Repository, mem.Repository)
		default:
			l, err := c.list(ctx, mem.Target)
			if err != nil {
				st.Error = err.Error()
				break
			}
			st.Drilled, st.Exists = l[mem.SnapshotID]
		}
		out.Intact = out.Intact && st.Exists
		out.Drilled = out.Drilled && st.Drilled
		out.Members = append(out.Members, st)
	}
	return out
}

// Show returns the lab snapshot name with its members checked.
func (m *Manager) Show(ctx context.Context, name string) (Checked, error) {
	st, err := m.store()
	if err != nil {
		return Checked{}, err
	}
	ls, err := st.LabSnapshot(ctx, name)
	if err != nil {
		return Checked{}, err
	}
	return m.newChecker().check(ctx, ls), nil
}

// List returns the lab snapshots, newest first, each with its members
// checked (each target's repository listed once).
func (m *Manager) List(ctx context.Context) ([]Checked, error) {
	st, err := m.store()
	if err != nil {
		return nil, err
	}
	all, err := st.LabSnapshotList(ctx, 0)
	if err != nil {
		return nil, err
	}
	c := m.newChecker()
	out := make([]Checked, 0, len(all))
	for _, ls := range all {
		out = append(out, c.check(ctx, ls))
	}
	return out, nil
}

// Delete removes the lab snapshot name: its members are left to
// retention from then on. A lab snapshot still being created by a live or
// unfinished saga is refused (resume that saga first).
func (m *Manager) Delete(ctx context.Context, name string) (catalog.LabSnapshot, error) {
	st, err := m.store()
	if err != nil {
		return catalog.LabSnapshot{}, err
	}
	ls, err := st.LabSnapshot(ctx, name)
	if err != nil {
		return ls, err
	}
	if ls.State == catalog.LabSnapshotCreating {
		// A create's, or a restore's restore point: resumed by its kind.
		kind := KindCreate
		if j, err := m.journal(); err == nil {
			if rec, err := j.Saga(ctx, ls.SagaID); err == nil {
				kind = rec.Kind
			}
		}
		return ls, fmt.Errorf("lab snapshot %s is being created (saga %s): finish that first (homelab %s --resume %s)", name, ls.SagaID, kind, ls.SagaID)
	}
	return ls, st.DeleteLabSnapshot(ctx, name)
}
