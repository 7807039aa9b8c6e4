package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"homelab/internal/status"
)

// writeJSON writes one JSON object on one line with its message_type.
func writeJSON(w io.Writer, messageType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		m = map[string]json.RawMessage{"data": b}
	}
	mt, _ := json.Marshal(messageType)
	m["message_type"] = mt
	b, err = json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func size(n int64) string {
	if n <= 0 {
		return "-"
	}
	return status.IEC(n)
}

func short(id string) string {
	if strings.Trim(id, "0123456789abcdef") != "" {
		return id // not a restic ID: a pgbackrest label is shown whole
	}
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// marks returns ✓/✗ on a terminal and plain words otherwise.
func mark(tty, ok bool) string {
	switch {
	case tty && ok:
		return "✓"
	case tty:
		return "✗"
	case ok:
		return "ok"
	}
	return "FAILED"
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
