package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/deploy"
	"homelab/internal/deploy/deploytest"
	"homelab/internal/lab"
	"homelab/internal/runtime"
	"homelab/internal/saga"
	"homelab/internal/status"
)

// TestDeployAndRollbackUnderLoad: v2 is deployed next to v1 while a few
// thousand requests go through HAProxy: none fails, the public URL then
// answers v2, and the history has the deploy; the fast rollback to v1,
// under the same load, fails none either and keeps v2 running.
func TestDeployAndRollbackUnderLoad(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{})

	l := f.StartLoad(t, 3000)
	rec, err := f.Deploy(t, deploytest.V2, deploy.Options{})
	if err != nil {
		t.Fatalf("deploy: %v\nHAProxy:\n%s", err, f.LB.Log())
	}
	seen := l.End(t)
	if rec.State != saga.Done || seen[deploytest.V1] == 0 || seen[deploytest.V2] == 0 { // the load spans the flip
		t.Errorf("deploy %s; versions seen %v", rec.State, seen)
	}
	if got, err := f.Answer(http.DefaultClient); got != deploytest.V2 || err != nil {
		t.Errorf("public URL answers %q, %v; want %s", got, err, deploytest.V2)
	}
	h := f.History(t)
	if len(h) != 1 || h[0].Kind != catalog.DeployNew || h[0].ToColor != lab.Green || h[0].ToVersion != deploytest.V2 ||
		h[0].FromColor != lab.Blue || h[0].FromVersion != deploytest.V1 || h[0].Who != "tester" || h[0].Host != "testhost" {
		t.Errorf("history %+v", h)
	}
	if f.State(t, lab.Blue) != runtime.Running {
		t.Error("blue (v1) is not kept running for a fast rollback")
	}

	l = f.StartLoad(t, 3000)
	start := time.Now()
	p, err := f.D.PlanRollback(t.Context(), "web", deploy.RollbackOptions{Reason: "v2 slow"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Start || p.To != (deploy.Side{Color: lab.Blue, Version: deploytest.V1}) {
		t.Errorf("rollback plan %+v", p)
	}
	if _, err := f.D.Run(t.Context(), p); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	t.Logf("fast rollback (plan, check, flip, verify, record) took %s", time.Since(start))
	seen = l.End(t)
	if seen[deploytest.V1] == 0 || seen[deploytest.V2] == 0 {
		t.Errorf("versions seen %v", seen)
	}
	if got, _ := f.Answer(http.DefaultClient); got != deploytest.V1 {
		t.Errorf("public URL answers %q after the rollback; want %s", got, deploytest.V1)
	}
	h = f.History(t)
	if len(h) != 2 || h[0].Kind != catalog.DeployRollback || h[0].Reason != "v2 slow" || h[0].ToColor != lab.Blue || h[0].FromVersion != deploytest.V2 {
		t.Errorf("history after the rollback %+v", h)
	}
	if f.State(t, lab.Green) != runtime.Running {
		t.Error("green (v2) stopped by the rollback")
	}
	ds := deploy.Statuses(t.Context(), f.Lab, f.Store)
	if len(ds) != 1 || ds[0].Error != "" || ds[0].Last == nil || ds[0].Last.Reason != "v2 slow" ||
		status.DeployLine(ds[0]) != "blue 1.0.0 serving; green 1.0.5 running (fast rollback ready)" {
		t.Errorf("status %+v", ds)
	}
}

// TestDeployHealthGateFails: v3 never passes its probe: traffic never
// leaves v2, the v3 color ends stopped, exit with the reason.
func TestDeployHealthGateFails(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{HealthyWithin: "20s"})
	if _, err := f.Deploy(t, deploytest.V2, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(f.LB.Config)
	l := f.StartLoad(t, 500)
	rec, err := f.Deploy(t, deploytest.V3, deploy.Options{})
	seen := l.End(t)
	var se *saga.Error
	if !errors.As(err, &se) || rec.State != saga.Compensated || !strings.Contains(err.Error(), "health probe") {
		t.Fatalf("deploy of v3: %s, %v; want compensated after the health gate", rec.State, err)
	}
	if len(seen) != 1 || seen[deploytest.V2] == 0 {
		t.Errorf("traffic left v2: %v", seen)
	}
	if after, _ := os.ReadFile(f.LB.Config); string(after) != string(before) {
		t.Errorf("HAProxy's configuration changed:\n%s", after)
	}
	if f.State(t, lab.Blue) != runtime.Stopped {
		t.Error("the v3 color (blue) still runs")
	}
	if h := f.History(t); len(h) != 1 || h[0].ToVersion != deploytest.V2 {
		t.Errorf("history %+v", h)
	}
}

// TestDeployConfigRefused: a server line HAProxy refuses: nothing is
// swapped, v1 still serves, the new color is stopped.
func TestDeployConfigRefused(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{ServerOptions: "no-such-keyword", Reload: "{pid_file: haproxy.pid}"})
	before, _ := os.ReadFile(f.LB.Config)
	rec, err := f.Deploy(t, deploytest.V2, deploy.Options{})
	if err == nil || rec.State != saga.Compensated || !strings.Contains(err.Error(), "haproxy -c refused") || !strings.Contains(err.Error(), "no-such-keyword") {
		t.Fatalf("deploy: %s, %v; want compensated, haproxy -c refused", rec.State, err)
	}
	if after, _ := os.ReadFile(f.LB.Config); string(after) != string(before) {
		t.Errorf("HAProxy's configuration changed:\n%s", after)
	}
	if _, err := os.Stat(f.LB.Config + ".homelab-check"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("check file left: %v", err)
	}
	if got, err := f.Answer(http.DefaultClient); got != deploytest.V1 || err != nil {
		t.Errorf("public URL answers %q, %v; want %s", got, err, deploytest.V1)
	}
	if f.State(t, lab.Green) != runtime.Stopped {
		t.Error("green still runs")
	}
	if h := f.History(t); len(h) != 0 {
		t.Errorf("history %+v", h)
	}
}

// TestRollbackColorGone: with the previous color stopped, the fast
// rollback is refused with the reason; --redeploy starts the previous
// version again and flips to it, with HAProxy reloaded by SIGUSR2 to its
// master (pid_file) under load: no request fails.
func TestRollbackColorGone(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{Reload: "{pid_file: haproxy.pid}"})
	if _, err := f.Deploy(t, deploytest.V2, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Runtime(t, lab.Blue).Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := f.D.PlanRollback(t.Context(), "web", deploy.RollbackOptions{Reason: "bad release"})
	var re *deploy.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "is gone") || !strings.Contains(err.Error(), "--redeploy") {
		t.Fatalf("fast rollback with blue stopped: %v; want refused, gone", err)
	}
	p, err := f.D.PlanRollback(t.Context(), "web", deploy.RollbackOptions{Redeploy: true, Reason: "bad release"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Start || p.Kind != catalog.DeployRedeploy || p.To != (deploy.Side{Color: lab.Blue, Version: deploytest.V1}) {
		t.Errorf("redeploy plan %+v", p)
	}
	l := f.StartLoad(t, 2000) // through the SIGUSR2 reload (pid_file) this time
	if _, err := f.D.Run(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if seen := l.End(t); seen[deploytest.V1] == 0 {
		t.Errorf("versions seen %v", seen)
	}
	if got, _ := f.Answer(http.DefaultClient); got != deploytest.V1 {
		t.Errorf("public URL answers %q; want %s", got, deploytest.V1)
	}
	if h := f.History(t); len(h) != 2 || h[0].Kind != catalog.DeployRedeploy || h[0].Reason != "bad release" {
		t.Errorf("history %+v", h)
	}
}

// TestDeployContractRefused: a release with DROP COLUMN is refused
// without --allow-contract, and deploys with it and a reason, recorded.
func TestDeployContractRefused(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{Migrations: true})
	for rel, sql := range map[string]string{
		"1.0.0/001_init.sql":  "CREATE TABLE users (id int, email text, mail text);",
		"1.0.5/001_nick.sql":  "ALTER TABLE users ADD COLUMN nick text;",
		"1.0.5/002_email.sql": "-- the old address\nALTER TABLE users DROP COLUMN email;",
	} {
		p := filepath.Join(f.Dir, "migrations", rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(sql), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.D.PlanDeploy(t.Context(), "web", deploytest.V2, deploy.Options{})
	var ce *deploy.ContractError
	if !errors.As(err, &ce) || len(ce.Statements) != 1 || !strings.Contains(err.Error(), "002_email.sql:2: drops column users.email") {
		t.Fatalf("plan: %v; want a ContractError naming 002_email.sql:2", err)
	}
	if _, err := f.D.PlanDeploy(t.Context(), "web", deploytest.V2, deploy.Options{AllowContract: true}); err == nil {
		t.Error("--allow-contract without a reason was taken")
	}
	if _, err := f.Deploy(t, deploytest.V2, deploy.Options{AllowContract: true, Reason: "email moved to mail in 1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if h := f.History(t); len(h) != 1 || !h[0].AllowContract || h[0].Reason != "email moved to mail in 1.0.0" {
		t.Errorf("history %+v", h)
	}
	// Going back past the contract warns.
	if err := f.Runtime(t, lab.Blue).Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	p, err := f.D.PlanRollback(t.Context(), "web", deploy.RollbackOptions{Redeploy: true, Reason: "r"})
	if err != nil || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "contract") {
		t.Errorf("redeploy plan warnings %q, %v", p.Warnings, err)
	}
}

// TestStateDisagrees: a configuration changed by hand behind homelab's
// back refuses the next deploy.
func TestStateDisagrees(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{})
	if _, err := f.Deploy(t, deploytest.V2, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(f.LB.Config)
	os.WriteFile(f.LB.Config, []byte(strings.Replace(string(cfg), "server green", "server blue", 1)), 0o644)
	_, err := f.D.PlanDeploy(context.Background(), "web", "1.1.0", deploy.Options{})
	var re *deploy.RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "catalog says green") {
		t.Errorf("plan: %v", err)
	}
}

// TestDeployStalePlan: a plan made before another deploy ran (the
// operator confirming, or --wait waiting for the lock) names as idle the
// color that now serves: its run is refused before anything changes, so
// the serving color is not stopped. A cleanup read before that deploy is
// refused the same way.
func TestDeployStalePlan(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{})
	stale, err := f.D.PlanDeploy(t.Context(), "web", deploytest.V2, deploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const other = "1.0.3"
	if _, err := f.Deploy(t, other, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	rec, err := f.D.Run(t.Context(), stale)
	var refused *deploy.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "now green (1.0.3) serves") || rec.State.Final() && rec.State != saga.Failed {
		t.Fatalf("stale plan: %s, %v; want refused, nothing changed", rec.State, err)
	}
	if got, err := f.Answer(http.DefaultClient); got != other || err != nil {
		t.Errorf("public URL answers %q, %v after the refused run; want %s", got, err, other)
	}
	if f.State(t, lab.Green) != runtime.Running || f.State(t, lab.Blue) != runtime.Running {
		t.Error("the refused run stopped a color")
	}
	if h := f.History(t); len(h) != 1 || h[0].ToVersion != other {
		t.Errorf("history %+v", h)
	}
}

// TestCleanupStale: a cleanup whose saga runs after another deploy made
// its idle color the serving one (it read the state, then waited for the
// lock) stops nothing: the serving color keeps serving.
func TestCleanupStale(t *testing.T) {
	f := deploytest.New(t, deploytest.Options{})
	// A cleanup journalled while blue (v1) served, its steps not begun
	// (the process waiting for the lock, as with --wait).
	params, _ := json.Marshal(map[string]any{"cleanup": true, "service": "web",
		"active": deploy.Side{Color: lab.Blue, Version: deploytest.V1}, "idle": deploy.Side{Color: lab.Green}, "who": "tester", "host": "testhost"})
	const id = "20261123T100000Z-0000c1ea"
	if _, err := f.Deploy(t, deploytest.V2, deploy.Options{}); err != nil { // green serves v2 now
		t.Fatal(err)
	}
	if err := f.Store.CreateSaga(t.Context(), catalog.Saga{ID: id, Kind: deploy.Kind, Subject: "web", Params: params,
		Plan: []string{"stop green", "record cleanup"}, State: catalog.SagaRunning, Start: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := f.D.Resume(t.Context(), id, saga.Forward)
	var refused *deploy.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "now green (1.0.5) serves") {
		t.Errorf("stale cleanup: %v; want refused", err)
	}
	if f.State(t, lab.Green) != runtime.Running {
		t.Fatal("the stale cleanup stopped green, which serves")
	}
	if got, err := f.Answer(http.DefaultClient); got != deploytest.V2 || err != nil {
		t.Errorf("public URL answers %q, %v; want %s", got, err, deploytest.V2)
	}
}
