package deploy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/haproxy"
	"homelab/internal/health"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/saga"
)

// Step names.
func checkStep(from Side) string       { return "check " + from.String() + " serves" }
func startStep(color, v string) string { return "start " + color + " at " + v }
func gateStep(color string) string     { return "health gate " + color }
func aliveStep(color string) string    { return "check " + color + " alive" }
func flipStep(color string) string     { return "flip haproxy to " + color }
func verifyStep(v string) string       { return "verify public url at " + v }
func recordStep(color string) string   { return "record " + color + " active" }

// Run runs p as a saga on the service (package doc) and returns the
// journalled record. A failure returns a *saga.Error: compensated means
// traffic is where it was (flipped back if it had moved) and the started
// color stopped. An unfinished saga on the service, or one that covers it
// (a lab snapshot create or restore, saga.Saga.Covers), refuses with
// saga.ErrUnfinished naming it and its --resume.
func (d *Deployer) Run(ctx context.Context, p Plan) (saga.Record, error) {
	steps, err := d.steps(p)
	if err != nil {
		return saga.Record{}, err
	}
	rec, err := d.runner().Run(ctx, saga.Saga{Kind: Kind, Subject: p.Service, Params: p, Steps: steps})
	d.event(ctx, rec, err)
	return rec, err
}

// PlanOf returns the plan journalled with a deploy saga.
func PlanOf(rec saga.Record) (Plan, error) {
	var p Plan
	if err := json.Unmarshal(rec.Params, &p); err != nil {
		return Plan{}, fmt.Errorf("saga %s: params: %w", rec.ID, err)
	}
	return p, nil
}

// Resume finishes the unfinished deploy saga id (saga.Runner.Resume): by
// default it compensates, so traffic goes back to the color that served
// before and the started color is stopped; with saga.Forward it finishes,
// where the journal shows that is safe. Either way HAProxy ends serving
// one color and the catalog records that one.
func (d *Deployer) Resume(ctx context.Context, id string, mode saga.Mode) (saga.Record, error) {
	rec, err := d.Catalog.Saga(ctx, id)
	if err != nil {
		return saga.Record{}, err
	}
	if rec.Kind != Kind {
		return rec, fmt.Errorf("saga %s is a %s, not a deploy", id, rec.Kind)
	}
	var c cleanupParams
	if err := json.Unmarshal(rec.Params, &c); err != nil {
		return rec, fmt.Errorf("saga %s: params: %w", rec.ID, err)
	}
	var steps []saga.Step
	if c.Cleanup {
		steps, err = d.cleanupSteps(c)
	} else {
		var p Plan
		if p, err = PlanOf(rec); err == nil {
			steps, err = d.steps(p)
		}
	}
	if err != nil {
		return rec, err
	}
	rec, err = d.runner().Resume(ctx, id, steps, mode)
	d.event(ctx, rec, err)
	return rec, err
}

// Unfinished returns the unfinished deploy sagas of service ("" any),
// newest first.
func (d *Deployer) Unfinished(ctx context.Context, service string) ([]saga.Record, error) {
	recs, err := saga.Unfinished(ctx, d.Catalog)
	if err != nil {
		return nil, err
	}
	var out []saga.Record
	for _, r := range recs {
		if r.Kind == Kind && (service == "" || r.Subject == service) {
			out = append(out, r)
		}
	}
	return out, nil
}

// History returns service's deploy records, newest first, at most limit
// (0: all).
func (d *Deployer) History(ctx context.Context, service string, limit int) ([]catalog.Deploy, error) {
	if service != "" {
		if _, err := d.service(service); err != nil {
			return nil, err
		}
	}
	return d.Catalog.DeployHistory(ctx, service, limit)
}

// event records a failed deploy saga as an event deploy_<state>.
func (d *Deployer) event(ctx context.Context, rec saga.Record, err error) {
	var se *saga.Error
	if err == nil || !errors.As(err, &se) {
		return
	}
	level := "warn" // traffic is where it was
	if rec.State == saga.NeedsAttention {
		level = "error"
	}
	ev := catalog.Event{Time: d.now(), Level: level, Target: rec.Subject, Kind: "deploy_" + string(rec.State), Message: err.Error()}
	if aerr := d.Catalog.AddEvent(context.WithoutCancel(ctx), ev); aerr != nil && d.Log != nil {
		d.Log.Warn("record event", "err", aerr)
	}
}

// steps builds the saga of p.
func (d *Deployer) steps(p Plan) ([]saga.Step, error) {
	dp, err := d.service(p.Service)
	if err != nil {
		return nil, err
	}
	to := dp.Colors.Color(p.To.Color)
	if to == nil || (p.From.Color != "" && dp.Colors.Color(p.From.Color) == nil) {
		return nil, fmt.Errorf("plan of %s names an unknown color", p.Service)
	}
	rt, ver, err := colorRuntime(p.Service, dp, p.To.Color)
	if err != nil {
		return nil, err
	}
	toSvc := to.Service(p.Service, p.To.Color)
	steps := []saga.Step{{
		Name: checkStep(p.From), Retryable: true,
		Do: func(ctx context.Context, _ *saga.StepContext) error { return d.stillHolds(ctx, p) },
	}}
	if p.Start {
		steps = append(steps,
			saga.Step{
				Name: startStep(p.To.Color, p.To.Version), Retryable: true,
				Do: func(ctx context.Context, _ *saga.StepContext) error {
					if err := rt.Stop(ctx); err != nil {
						return err
					}
					if err := ver.SetVersion(ctx, p.To.Version); err != nil {
						return err
					}
					return rt.Start(ctx)
				},
				Undo: func(ctx context.Context, _ *saga.StepContext) error { return rt.Stop(ctx) },
			},
			saga.Step{
				Name: gateStep(p.To.Color), Retryable: true,
				Do: func(ctx context.Context, _ *saga.StepContext) error {
					return d.gate(ctx, toSvc, p.To, p.HealthyWithin)
				},
			})
	} else {
		steps = append(steps, saga.Step{
			Name: aliveStep(p.To.Color), Retryable: true,
			Do: func(ctx context.Context, _ *saga.StepContext) error {
				if err := d.alive(ctx, p.Service, dp, p.To); err != nil {
					return fmt.Errorf("%s: %w", p.To, err)
				}
				return nil
			},
		})
	}
	steps = append(steps,
		saga.Step{
			Name: flipStep(p.To.Color), Retryable: true,
			Do: func(ctx context.Context, _ *saga.StepContext) error { return d.flip(ctx, dp, p.To.Color) },
			Undo: func(ctx context.Context, _ *saga.StepContext) error {
				if err := d.flip(ctx, dp, p.From.Color); err != nil {
					return err
				}
				if p.From.Color == "" {
					return nil
				}
				return d.verify(ctx, dp, p.From.Version, p.HealthyWithin)
			},
		},
		saga.Step{
			Name: verifyStep(p.To.Version), Retryable: true,
			Do: func(ctx context.Context, _ *saga.StepContext) error {
				return d.verify(ctx, dp, p.To.Version, p.HealthyWithin)
			},
		},
		saga.Step{
			Name: recordStep(p.To.Color), Retryable: true,
			Do: func(ctx context.Context, sc *saga.StepContext) error { return d.record(ctx, p, sc.SagaID()) },
			Undo: func(ctx context.Context, sc *saga.StepContext) error {
				return d.Catalog.DeleteDeploys(ctx, sc.SagaID())
			},
		})
	return steps, nil
}

// stillHolds checks, under the saga's lock, what the plan was made on
// (outside it, before a confirmation or a --wait for another deploy):
// From still serves (the catalog and HAProxy agreeing), and the color to
// start is still stopped or the one kept for a rollback, or (a fast
// rollback) the kept color is still To. Otherwise a *RefusedError: a
// plan made before another deploy would stop the color that now serves.
func (d *Deployer) stillHolds(ctx context.Context, p Plan) error {
	st, err := d.State(ctx, p.Service)
	if err != nil {
		return err
	}
	stale := func(why string) error {
		return &RefusedError{Service: p.Service, Reason: fmt.Sprintf("the plan was made while %s served, %s: nothing was changed; plan again", p.From, why)}
	}
	if st.Active != p.From {
		return stale(fmt.Sprintf("now %s serves", st.Active))
	}
	if !p.Start {
		if st.Kept != p.To {
			return stale(fmt.Sprintf("and %s is no longer kept for a fast rollback", p.To))
		}
		return nil
	}
	dp, err := d.service(p.Service)
	if err != nil {
		return err
	}
	rt, _, err := colorRuntime(p.Service, dp, p.To.Color)
	if err != nil {
		return err
	}
	rs, err := rt.Status(ctx)
	if err != nil {
		return fmt.Errorf("the idle color %s: %w", p.To.Color, err)
	}
	if rs.State != runtime.Stopped && st.Kept.Color != p.To.Color {
		return stale(fmt.Sprintf("and the idle color %s is %s without a deploy keeping it", p.To.Color, rs.State))
	}
	return nil
}

// gate waits until the color's probe passes, within limit.
func (d *Deployer) gate(ctx context.Context, svc *lab.Service, s Side, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var last health.Result
	for {
		last = health.Probe(ctx, svc, health.Options{})
		if last.Healthy {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s did not pass its health probe within %s: %s", s, limit, last.Detail)
			}
			return ctx.Err()
		case <-time.After(d.poll()):
		}
	}
}

// flip renders the backend's server line for color ("" none), checks
// the configuration and swaps it in, then reloads HAProxy. A
// configuration whose backend already serves color is left as it is (the
// flip back after a refused configuration, whose server line would be
// refused again) but HAProxy is still reloaded: a crash may have come
// between the swap and the reload.
func (d *Deployer) flip(ctx context.Context, dp *lab.Deploy, color string) error {
	h := dp.HAProxy
	cfg, err := os.ReadFile(h.Config)
	if err != nil {
		return fmt.Errorf("read HAProxy's configuration: %w", err)
	}
	if live, err := haproxy.Active(cfg, h.Backend); err == nil && live == color && color != "" {
		return d.reload(ctx, dp)
	}
	addr := ""
	if c := dp.Colors.Color(color); c != nil {
		addr = c.Address
	}
	out, err := haproxy.Render(cfg, h.Backend, color, addr, h.ServerOptions)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Config, err)
	}
	if err := haproxy.Swap(ctx, h.Binary, h.Config, out, h.Timeout); err != nil {
		return err
	}
	return d.reload(ctx, dp)
}

func (d *Deployer) reload(ctx context.Context, dp *lab.Deploy) error {
	what, err := haproxy.Reload(ctx, dp.HAProxy.Reload, filepath.Dir(d.Lab.Path), dp.HAProxy.Timeout)
	if err != nil {
		return fmt.Errorf("reload HAProxy: %w", err)
	}
	if d.Log != nil {
		d.Log.Debug("reloaded HAProxy", "how", what)
	}
	return nil
}

// reloadEvery is how often verify repeats the reload while the public URL
// does not answer from the wanted version: HAProxy's master ignores a
// reload that comes while it is finishing the previous one.
const reloadEvery = 2 * time.Second

// verify waits, within limit, until the public URL answers from v,
// reloading HAProxy again every reloadEvery while it does not.
func (d *Deployer) verify(ctx context.Context, dp *lab.Deploy, v string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: dp.Insecure},
	}}
	last := ""
	reloaded := time.Now()
	for {
		body, err := get(ctx, client, dp.PublicURL)
		if err == nil && Answers(body, v) {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%q", firstLine(body))
		}
		if time.Since(reloaded) >= reloadEvery {
			if err := d.reload(ctx, dp); err != nil {
				return err
			}
			reloaded = time.Now()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the public URL %s did not answer from %s within %s: last answer %s", dp.PublicURL, v, limit, last)
			}
			return ctx.Err()
		case <-time.After(d.poll()):
		}
	}
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, firstLine(string(b)))
	}
	return string(b), nil
}

// Answers reports whether body names version v as a word of its own
// (bounded by the text's ends or by characters that are not letters,
// digits, '.', '-' or '+'): "1.0.5\n" and `{"version":"1.0.5"}` answer
// 1.0.5; "1.0.50" does not.
func Answers(body, v string) bool {
	word := func(r byte) bool {
		return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '.' || r == '-' || r == '+'
	}
	for i := 0; v != "" && i+len(v) <= len(body); {
		j := strings.Index(body[i:], v)
		if j < 0 {
			return false
		}
		at := i + j
		if (at == 0 || !word(body[at-1])) && (at+len(v) == len(body) || !word(body[at+len(v)])) {
			return true
		}
		i = at + 1
	}
	return false
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// record adds p's deploy record, once per saga.
func (d *Deployer) record(ctx context.Context, p Plan, sagaID string) error {
	hist, err := d.Catalog.DeployHistory(ctx, p.Service, 5)
	if err != nil {
		return err
	}
	for _, h := range hist {
		if h.SagaID == sagaID {
			return nil
		}
	}
	_, err = d.Catalog.AddDeploy(ctx, catalog.Deploy{
		Service: p.Service, Time: d.now(), Kind: p.Kind,
		FromColor: p.From.Color, FromVersion: p.From.Version, ToColor: p.To.Color, ToVersion: p.To.Version,
		Who: p.Who, Host: p.Host, Reason: p.Reason, AllowContract: p.AllowContract, SagaID: sagaID,
	})
	return err
}

// cleanupParams is what a cleanup saga journals.
type cleanupParams struct {
	// Cleanup tells a cleanup's params from a Plan.
	Cleanup bool   `json:"cleanup"`
	Service string `json:"service"`
	Active  Side   `json:"active"`
	Idle    Side   `json:"idle"`
	Who     string `json:"who"`
	Host    string `json:"host"`
}

// Cleanup stops service's idle color (the one kept for a fast rollback,
// or one that runs without a record) and records that no fast rollback is
// left. It returns the color stopped; nothing to stop (no color serves
// yet) is a *RefusedError.
func (d *Deployer) Cleanup(ctx context.Context, service string) (Side, error) {
	st, err := d.State(ctx, service)
	if err != nil {
		return Side{}, err
	}
	if st.Active.Color == "" {
		return Side{}, &RefusedError{Service: service, Reason: "nothing serves yet: no color is idle"}
	}
	idle := Side{Color: Other(st.Active.Color)}
	if st.Kept.Color == idle.Color {
		idle.Version = st.Kept.Version
	}
	var p Plan
	d.identity(&p)
	c := cleanupParams{Cleanup: true, Service: service, Active: st.Active, Idle: idle, Who: p.Who, Host: p.Host}
	steps, err := d.cleanupSteps(c)
	if err != nil {
		return Side{}, err
	}
	_, err = d.runner().Run(ctx, saga.Saga{Kind: Kind, Subject: service, Params: c, Steps: steps})
	return idle, err
}

func (d *Deployer) cleanupSteps(c cleanupParams) ([]saga.Step, error) {
	dp, err := d.service(c.Service)
	if err != nil {
		return nil, err
	}
	rt, err := runtime.New(dp.Colors.Color(c.Idle.Color).Service(c.Service, c.Idle.Color), runtime.Options{})
	if err != nil {
		return nil, err
	}
	return []saga.Step{
		{Name: "stop " + c.Idle.Color, Retryable: true, Do: func(ctx context.Context, _ *saga.StepContext) error {
			// Checked under the saga's lock: a deploy that ran since
			// Cleanup read the state (while --wait waited for it) may
			// have made the idle color the one that serves.
			st, err := d.State(ctx, c.Service)
			if err != nil {
				return err
			}
			if st.Active != c.Active {
				return &RefusedError{Service: c.Service, Reason: fmt.Sprintf("the cleanup was planned while %s served, now %s serves: nothing was stopped; run it again", c.Active, st.Active)}
			}
			return rt.Stop(ctx)
		}},
		{Name: "record cleanup", Retryable: true, Do: func(ctx context.Context, sc *saga.StepContext) error {
			hist, err := d.Catalog.DeployHistory(ctx, c.Service, 1)
			if err != nil || len(hist) > 0 && hist[0].SagaID == sc.SagaID() {
				return err
			}
			_, err = d.Catalog.AddDeploy(ctx, catalog.Deploy{Service: c.Service, Time: d.now(), Kind: catalog.DeployCleanup,
				FromColor: c.Idle.Color, FromVersion: c.Idle.Version, ToColor: c.Active.Color, ToVersion: c.Active.Version,
				Who: c.Who, Host: c.Host, SagaID: sc.SagaID()})
			return err
		}},
	}, nil
}
