package restic

import (
	"encoding/json"
	"time"
)

// Status is a progress event from restic's JSON status lines (backup and
// restore). Byte counts in bytes, durations in seconds as restic gives them.
type Status struct {
	PercentDone      float64  `json:"percent_done"`
	TotalFiles       int64    `json:"total_files"`
	FilesDone        int64    `json:"files_done"`
	FilesRestored    int64    `json:"files_restored"`
	TotalBytes       int64    `json:"total_bytes"`
	BytesDone        int64    `json:"bytes_done"`
	BytesRestored    int64    `json:"bytes_restored"`
	SecondsElapsed   float64  `json:"seconds_elapsed"`
	SecondsRemaining float64  `json:"seconds_remaining"`
	ErrorCount       int64    `json:"error_count"`
	CurrentFiles     []string `json:"current_files"`
}

// Done returns the bytes and files done whichever command sent the status.
func (s Status) Done() (bytes, files int64) {
	if s.BytesRestored > 0 || s.FilesRestored > 0 {
		return s.BytesRestored, s.FilesRestored
	}
	return s.BytesDone, s.FilesDone
}

// BackupSummary is restic backup's final JSON line.
type BackupSummary struct {
	SnapshotID          string    `json:"snapshot_id"`
	FilesNew            int64     `json:"files_new"`
	FilesChanged        int64     `json:"files_changed"`
	FilesUnmodified     int64     `json:"files_unmodified"`
	DataAdded           int64     `json:"data_added"`
	DataAddedPacked     int64     `json:"data_added_packed"`
	TotalFilesProcessed int64     `json:"total_files_processed"`
	TotalBytesProcessed int64     `json:"total_bytes_processed"`
	TotalDuration       float64   `json:"total_duration"` // seconds
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
}

// RestoreSummary is restic restore's final JSON line.
type RestoreSummary struct {
	TotalFiles    int64 `json:"total_files"`
	FilesRestored int64 `json:"files_restored"`
	FilesSkipped  int64 `json:"files_skipped"`
	TotalBytes    int64 `json:"total_bytes"`
	BytesRestored int64 `json:"bytes_restored"`
}

// CheckSummary is restic check's final JSON line.
type CheckSummary struct {
	NumErrors          int64    `json:"num_errors"`
	BrokenPacks        []string `json:"broken_packs"`
	SuggestRepairIndex bool     `json:"suggest_repair_index"`
	SuggestPrune       bool     `json:"suggest_prune"`
}

// ItemError is a non-fatal error restic reports about one item.
type ItemError struct {
	Message string `json:"message"`
	During  string `json:"during"`
	Item    string `json:"item"`
}

// Snapshot is one restic snapshot (restic snapshots --json).
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Tags     []string  `json:"tags"`
	Summary  *struct {
		TotalFilesProcessed int64 `json:"total_files_processed"`
		TotalBytesProcessed int64 `json:"total_bytes_processed"`
		DataAdded           int64 `json:"data_added"`
	} `json:"summary,omitempty"`
}

// HasTag reports whether s carries tag.
func (s Snapshot) HasTag(tag string) bool {
	for _, t := range s.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// TagValue returns the value of the first "key:value" tag with that key.
func (s Snapshot) TagValue(key string) string {
	for _, t := range s.Tags {
		if len(t) > len(key) && t[:len(key)] == key && t[len(key)] == ':' {
			return t[len(key)+1:]
		}
	}
	return ""
}

// ForgetGroup is one group of restic forget --json output.
type ForgetGroup struct {
	Keep   []Snapshot `json:"keep"`
	Remove []Snapshot `json:"remove"`
}

type envelope struct {
	MessageType string          `json:"message_type"`
	Error       json.RawMessage `json:"error"`
	During      string          `json:"during"`
	Item        string          `json:"item"`
	Code        int             `json:"code"`
	Message     string          `json:"message"`
}

// parseLine decodes one JSON line leniently: ok is false for lines that
// are not JSON objects with a message_type.
func parseLine(line []byte) (env envelope, ok bool) {
	if len(line) == 0 || line[0] != '{' {
		return env, false
	}
	if json.Unmarshal(line, &env) != nil || env.MessageType == "" {
		return env, false
	}
	return env, true
}

// errorText extracts the message of an "error" message (restic nests it
// as {"error":{"message":...}}).
func (e envelope) errorText() string {
	var nested struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(e.Error, &nested) == nil && nested.Message != "" {
		return nested.Message
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil {
		return s
	}
	return string(e.Error)
}
