package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"homelab/internal/catalog"
	"homelab/internal/status"
)

const (
	// DefaultRunsLimit is how many runs /api/v1/runs returns without a
	// limit parameter.
	DefaultRunsLimit = 50
	// MaxRunsLimit is the largest limit /api/v1/runs accepts.
	MaxRunsLimit = 1000
)

// apiStatus serves the report exactly as `homelab status --json` prints it
// (status.RenderJSON).
func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	store, err := s.store(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	rep, err := s.report(r.Context(), store, s.o.Lab(), s.o.Now())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	var b bytes.Buffer
	if err := status.RenderJSON(&b, rep); err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSONBytes(w, http.StatusOK, b.Bytes())
}

// runsResponse is the body of /api/v1/runs.
type runsResponse struct {
	MessageType string   `json:"message_type"` // "runs"
	Runs        []apiRun `json:"runs"`
}

// apiRun is a catalog run as the API shows it: times in RFC 3339 UTC like
// status.RenderJSON, end and duration null while the run is running.
type apiRun struct {
	ID              int64    `json:"id"`
	RunID           string   `json:"run_id"`
	Kind            string   `json:"kind"`
	Target          string   `json:"target"`
	Provider        string   `json:"provider"`
	Repository      string   `json:"repository"`
	SnapshotID      string   `json:"snapshot_id"`
	Start           string   `json:"start"`
	End             *string  `json:"end"`
	DurationSeconds *float64 `json:"duration_seconds"`
	Bytes           int64    `json:"bytes"`
	BytesAdded      int64    `json:"bytes_added"`
	Files           int64    `json:"files"`
	Result          string   `json:"result"`
	Error           string   `json:"error"`
}

func apiRunOf(r catalog.Run) apiRun {
	a := apiRun{
		ID: r.ID, RunID: r.RunID, Kind: string(r.Kind), Target: r.Target, Provider: r.Provider,
		Repository: r.Repository, SnapshotID: r.SnapshotID, Start: rfc3339(r.Start),
		Bytes: r.Bytes, BytesAdded: r.BytesAdded, Files: r.Files, Result: string(r.Result), Error: r.Error,
	}
	if !r.End.IsZero() {
		end := rfc3339(r.End)
		d := r.End.Sub(r.Start).Seconds()
		a.End, a.DurationSeconds = &end, &d
	}
	return a
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

var (
	runKinds   = []catalog.Kind{catalog.KindBackup, catalog.KindRestore, catalog.KindPrune, catalog.KindCheck}
	runResults = []catalog.Result{catalog.ResultRunning, catalog.ResultOK, catalog.ResultFailed, catalog.ResultPartial, catalog.ResultInterrupted}
)

// apiRuns serves catalog runs, newest first, filtered by the query
// parameters target, kind and result, at most limit of them.
func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	f, err := runFilter(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	runs, err := s.o.Catalog.Runs(r.Context(), f)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	resp := runsResponse{MessageType: "runs", Runs: make([]apiRun, 0, len(runs))}
	for _, run := range runs {
		resp.Runs = append(resp.Runs, apiRunOf(run))
	}
	writeJSON(w, http.StatusOK, resp)
}

// runFilter reads /api/v1/runs's query parameters. Unknown parameters are
// errors, so that a misspelt filter does not silently match every run.
func runFilter(r *http.Request) (catalog.RunFilter, error) {
	q := r.URL.Query()
	f := catalog.RunFilter{Limit: DefaultRunsLimit}
	for name, vs := range q {
		if len(vs) != 1 {
			return f, fmt.Errorf("parameter %s given %d times", name, len(vs))
		}
		v := vs[0]
		switch name {
		case "target":
			f.Target = v
		case "kind":
			if v != "" && !slices.Contains(runKinds, catalog.Kind(v)) {
				return f, fmt.Errorf("bad kind %q (known: %s)", v, list(runKinds))
			}
			f.Kind = catalog.Kind(v)
		case "result":
			if v != "" && !slices.Contains(runResults, catalog.Result(v)) {
				return f, fmt.Errorf("bad result %q (known: %s)", v, list(runResults))
			}
			f.Result = catalog.Result(v)
		case "limit":
			if v == "" {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxRunsLimit {
				return f, fmt.Errorf("bad limit %q: want a number from 1 to %d", v, MaxRunsLimit)
			}
			f.Limit = n
		default:
			return f, fmt.Errorf("unknown parameter %q (known: target, kind, result, limit)", name)
		}
	}
	return f, nil
}

func list[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// apiError is the body of every API error.
type apiError struct {
	MessageType string `json:"message_type"` // "error"
	Error       string `json:"error"`
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{MessageType: "error", Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, code, b.Bytes())
}

func writeJSONBytes(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(body)
}

// internalError logs err and answers 500: JSON for the API, text for the
// page. The message is the error's, which names what failed (a catalog
// query, a schedule) and holds no secret.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.o.Log.Error("http request failed", "path", r.URL.Path, "err", err)
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
}
