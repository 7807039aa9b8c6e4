package catalog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SagaState is where a saga is in its life; package saga documents the
// state machine. Running and compensating sagas whose process died, and
// sagas that need attention, are unfinished; the other states are final.
type SagaState string

const (
	// SagaRunning: steps are being run forward.
	SagaRunning SagaState = "running"
	// SagaDone: every step ran. Final.
	SagaDone SagaState = "done"
	// SagaFailed: a step failed and nothing needed undoing (no step that
	// began has a compensation), so nothing changed. Final.
	SagaFailed SagaState = "failed"
	// SagaCompensating: a step failed (or the saga is being resumed
	// backwards) and the steps that began are being undone in reverse.
	SagaCompensating SagaState = "compensating"
	// SagaCompensated: a step failed and every step that began was undone.
	// Final.
	SagaCompensated SagaState = "compensated"
	// SagaNeedsAttention: a compensation failed; the saga stopped there
	// until an operator fixes the cause and resumes it.
	SagaNeedsAttention SagaState = "needs_attention"
	// SagaResolved: an unfinished saga that an operator put right by hand
	// and closed (saga.Runner.Resolve); homelab changed nothing more.
	// Final.
	SagaResolved SagaState = "resolved"
)

// UnfinishedSagaStates are the states of sagas that are not over: running
// or compensating (the process running them died, or is still at it), or
// needing attention.
var UnfinishedSagaStates = []SagaState{SagaRunning, SagaCompensating, SagaNeedsAttention}

// Final reports whether a saga in state st is over: done, failed,
// compensated or resolved.
func (st SagaState) Final() bool {
	return st == SagaDone || st == SagaFailed || st == SagaCompensated || st == SagaResolved
}

func (st SagaState) valid() bool {
	switch st {
	case SagaRunning, SagaDone, SagaFailed, SagaCompensating, SagaCompensated, SagaNeedsAttention, SagaResolved:
		return true
	}
	return false
}

// StepPhase says whether a journal row is a step's forward action or its
// compensation.
type StepPhase string

const (
	PhaseForward    StepPhase = "forward"
	PhaseCompensate StepPhase = "compensate"
)

// StepState is the state of one journal row.
type StepState string

const (
	// StepStarted is written before the action runs: a row left in this
	// state means the process died during it.
	StepStarted StepState = "started"
	StepDone    StepState = "done"
	StepFailed  StepState = "failed"
	// StepSkipped is a compensation with nothing to undo.
	StepSkipped StepState = "skipped"
)

func (st StepState) valid() bool {
	switch st {
	case StepStarted, StepDone, StepFailed, StepSkipped:
		return true
	}
	return false
}

// Saga is one saga and its journal.
type Saga struct {
	// ID identifies the saga (package saga makes one from the time and
	// random bytes).
	ID string `json:"id"`
	// Kind is what the saga does, e.g. "upgrade".
	Kind string `json:"kind"`
	// Subject is what it changes, e.g. the service upgraded.
	Subject string `json:"subject"`
	// Params is a JSON value from which the saga's steps can be built
	// again (for an upgrade: from and to versions, the path); nil if none.
	Params json.RawMessage `json:"params,omitempty"`
	// Plan is the names of the saga's steps, in order.
	Plan  []string  `json:"plan"`
	State SagaState `json:"state"`
	Start time.Time `json:"start"`
	// End is when the saga reached its current state if that is final or
	// needs attention; zero while it runs or compensates.
	End time.Time `json:"end,omitempty"`
	// Error is why the saga did not finish done: a step's failure, an
	// interruption. A failed compensation is in its journal row.
	Error string `json:"error,omitempty"`
	// Steps is the journal: the forward rows by ascending Seq, then the
	// compensation rows by descending Seq (the order in which they ran).
	Steps []SagaStep `json:"steps,omitempty"`
}

// SagaStep is one journal row: the forward action or the compensation of
// the step at Seq (1-based, the index in Plan plus one).
type SagaStep struct {
	Seq   int       `json:"seq"`
	Name  string    `json:"name"`
	Phase StepPhase `json:"phase"`
	State StepState `json:"state"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitempty"` // zero while started
	// Data is what the action recorded for later steps, compensation or
	// resume (a snapshot ID, the previous version); nil if nothing.
	Data  map[string]string `json:"data,omitempty"`
	Error string            `json:"error,omitempty"`
}

// SagaFilter selects sagas; zero fields match everything. Results are
// newest first (by start, then insertion); Limit 0 means no limit.
type SagaFilter struct {
	Kind    string
	Subject string
	// States, if not empty, are the states to match (any of them).
	States []SagaState
	Limit  int
}

// Journal records sagas and their steps. It must live apart from anything
// a saga changes. Every write is its own transaction and is durable (it
// survives a power loss) when the method returns, so package saga can
// write a row before a step acts and know it will be found after a crash.
// All methods are safe for concurrent use by several processes. SQLite
// implements it.
type Journal interface {
	// CreateSaga inserts s (without its Steps). ID, Kind, Subject, State
	// and Start are required; Params, if not nil, must be valid JSON. An
	// ID already used is an error.
	CreateSaga(ctx context.Context, s Saga) error
	// SetSagaState sets the state, end (zero: none) and error of the saga
	// with ID id; an unknown ID gives an error wrapping ErrNotFound.
	SetSagaState(ctx context.Context, id string, state SagaState, end time.Time, errMsg string) error
	// PutStep writes the journal row (st.Seq, st.Phase) of saga id whole,
	// inserting or replacing it. Seq (>= 1), Name, Phase, State and Start
	// are required; an unknown saga gives an error wrapping ErrNotFound.
	PutStep(ctx context.Context, id string, st SagaStep) error
	// Saga returns the saga with ID id and its journal; an unknown ID
	// gives an error wrapping ErrNotFound.
	Saga(ctx context.Context, id string) (Saga, error)
	// Sagas returns the sagas matching f with their journals, newest first.
	Sagas(ctx context.Context, f SagaFilter) ([]Saga, error)
}

var _ Journal = (*SQLite)(nil)

// durably runs f on one connection with synchronous=FULL, so that each
// transaction f commits is in the fsynced WAL when it returns, not only
// in the OS's cache (synchronous=NORMAL, the default of the other
// writes, may lose the last transactions on a power loss). The connection
// goes back to the pool reset to NORMAL, or is discarded.
func (s *SQLite) durably(ctx context.Context, f func(c *sql.Conn) error) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
		return err
	}
	defer func() {
		if _, err := c.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = NORMAL"); err != nil {
			// Returning ErrBadConn makes database/sql drop the connection.
			_ = c.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return f(c)
}

// CreateSaga inserts s, durably. See Journal.
func (s *SQLite) CreateSaga(ctx context.Context, sg Saga) error {
	if sg.ID == "" || sg.Kind == "" || sg.Subject == "" || sg.Start.IsZero() {
		return errors.New("create saga: id, kind, subject and start are required")
	}
	if !sg.State.valid() {
		return fmt.Errorf("create saga %s: invalid state %q", sg.ID, sg.State)
	}
	var params any
	if sg.Params != nil {
		if !json.Valid(sg.Params) {
			return fmt.Errorf("create saga %s: params are not valid JSON", sg.ID)
		}
		params = string(sg.Params)
	}
	plan, err := json.Marshal(nonNil(sg.Plan))
	if err != nil {
		return fmt.Errorf("create saga %s: %w", sg.ID, err)
	}
	err = s.durably(ctx, func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO sagas (id, kind, subject, params, plan, state,
			started_at, finished_at, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sg.ID, sg.Kind, sg.Subject, params, string(plan), sg.State,
			encTime(sg.Start), encTime(sg.End), sg.Error)
		return err
	})
	if err != nil {
		return fmt.Errorf("create saga %s: %w", sg.ID, err)
	}
	return nil
}

// SetSagaState updates the saga's state, end and error, durably. See
// Journal.
func (s *SQLite) SetSagaState(ctx context.Context, id string, state SagaState, end time.Time, errMsg string) error {
	if !state.valid() {
		return fmt.Errorf("set state of saga %s: invalid state %q", id, state)
	}
	var n int64
	err := s.durably(ctx, func(c *sql.Conn) error {
		res, err := c.ExecContext(ctx, `UPDATE sagas SET state = ?, finished_at = ?, error = ? WHERE id = ?`,
			state, encTime(end), errMsg, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("set state of saga %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("set state of saga %s: %w", id, ErrNotFound)
	}
	return nil
}

// PutStep inserts or replaces one journal row, durably. See Journal.
func (s *SQLite) PutStep(ctx context.Context, id string, st SagaStep) error {
	if st.Seq < 1 || st.Name == "" || st.Start.IsZero() {
		return fmt.Errorf("journal step of saga %s: seq >= 1, name and start are required", id)
	}
	if st.Phase != PhaseForward && st.Phase != PhaseCompensate {
		return fmt.Errorf("journal step %q of saga %s: invalid phase %q", st.Name, id, st.Phase)
	}
	if !st.State.valid() {
		return fmt.Errorf("journal step %q of saga %s: invalid state %q", st.Name, id, st.State)
	}
	data, err := json.Marshal(nonNilMap(st.Data))
	if err != nil {
		return fmt.Errorf("journal step %q of saga %s: %w", st.Name, id, err)
	}
	var n int64
	err = s.durably(ctx, func(c *sql.Conn) error {
		// The WHERE makes an unknown saga insert nothing (n == 0) rather
		// than fail on the foreign key.
		res, err := c.ExecContext(ctx, `INSERT INTO saga_steps (saga_id, seq, phase, name, state,
			started_at, finished_at, data, error)
			SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM sagas WHERE id = ?)
			ON CONFLICT (saga_id, seq, phase) DO UPDATE SET name = excluded.name,
				state = excluded.state, started_at = excluded.started_at,
				finished_at = excluded.finished_at, data = excluded.data, error = excluded.error`,
			id, st.Seq, st.Phase, st.Name, st.State, encTime(st.Start), encTime(st.End),
			string(data), st.Error, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("journal step %q of saga %s: %w", st.Name, id, err)
	}
	if n == 0 {
		return fmt.Errorf("journal step %q of saga %s: %w", st.Name, id, ErrNotFound)
	}
	return nil
}

// Saga returns one saga with its journal. See Journal.
func (s *SQLite) Saga(ctx context.Context, id string) (Saga, error) {
	sagas, err := s.sagas(ctx, "id = ?", []any{id}, 0)
	if err != nil {
		return Saga{}, fmt.Errorf("load saga %s: %w", id, err)
	}
	if len(sagas) == 0 {
		return Saga{}, fmt.Errorf("load saga %s: %w", id, ErrNotFound)
	}
	return sagas[0], nil
}

// Sagas returns the sagas matching f with their journals, newest first.
// See Journal.
func (s *SQLite) Sagas(ctx context.Context, f SagaFilter) ([]Saga, error) {
	var conds []string
	var args []any
	if f.Kind != "" {
		conds, args = append(conds, "kind = ?"), append(args, f.Kind)
	}
	if f.Subject != "" {
		conds, args = append(conds, "subject = ?"), append(args, f.Subject)
	}
	if len(f.States) > 0 {
		conds = append(conds, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	cond := "1"
	if len(conds) > 0 {
		cond = strings.Join(conds, " AND ")
	}
	sagas, err := s.sagas(ctx, cond, args, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list sagas: %w", err)
	}
	return sagas, nil
}

// sagas reads the sagas matching cond (an SQL condition on sagas' columns
// with its args), newest first, at most limit (0: all), and their journal
// rows, in two queries of one read transaction.
func (s *SQLite) sagas(ctx context.Context, cond string, args []any, limit int) ([]Saga, error) {
	sel := "SELECT rowid FROM sagas WHERE " + cond + " ORDER BY started_at DESC, rowid DESC"
	if limit > 0 {
		sel += fmt.Sprintf(" LIMIT %d", limit)
	}
	// A read-only transaction: both queries see the same catalog. BEGIN
	// IMMEDIATE (the DSN's _txlock) would take the write lock; a deferred
	// read transaction is enough.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, kind, subject, params, plan, state, started_at,
		finished_at, error FROM sagas WHERE rowid IN (`+sel+`) ORDER BY started_at DESC, rowid DESC`, args...)
	if err != nil {
		return nil, err
	}
	var out []Saga
	index := map[string]int{}
	for rows.Next() {
		var sg Saga
		var params sql.NullString
		var plan string
		var start, end sql.NullString
		if err := rows.Scan(&sg.ID, &sg.Kind, &sg.Subject, &params, &plan, &sg.State, &start, &end, &sg.Error); err != nil {
			rows.Close()
			return nil, err
		}
		if params.Valid {
			sg.Params = json.RawMessage(params.String)
		}
		if err := json.Unmarshal([]byte(plan), &sg.Plan); err != nil {
			rows.Close()
			return nil, fmt.Errorf("saga %s: plan: %w", sg.ID, err)
		}
		if sg.Start, err = decTime(start); err != nil {
			rows.Close()
			return nil, fmt.Errorf("saga %s: %w", sg.ID, err)
		}
		if sg.End, err = decTime(end); err != nil {
			rows.Close()
			return nil, fmt.Errorf("saga %s: %w", sg.ID, err)
		}
		index[sg.ID] = len(out)
		out = append(out, sg)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	rows, err = tx.QueryContext(ctx, `SELECT saga_id, seq, phase, name, state, started_at, finished_at,
		data, error FROM saga_steps WHERE saga_id IN (SELECT id FROM sagas WHERE rowid IN (`+sel+`))
		ORDER BY saga_id, phase = 'compensate',
			CASE phase WHEN 'compensate' THEN -seq ELSE seq END`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, data string
		var st SagaStep
		var start, end sql.NullString
		if err := rows.Scan(&id, &st.Seq, &st.Phase, &st.Name, &st.State, &start, &end, &data, &st.Error); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(data), &st.Data); err != nil {
			return nil, fmt.Errorf("saga %s: step %d: data: %w", id, st.Seq, err)
		}
		if len(st.Data) == 0 {
			st.Data = nil
		}
		if st.Start, err = decTime(start); err != nil {
			return nil, fmt.Errorf("saga %s: step %d: %w", id, st.Seq, err)
		}
		if st.End, err = decTime(end); err != nil {
			return nil, fmt.Errorf("saga %s: step %d: %w", id, st.Seq, err)
		}
		i, ok := index[id]
		if !ok { // cannot happen: both queries select the same sagas
			continue
		}
		out[i].Steps = append(out[i].Steps, st)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
