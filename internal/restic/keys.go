package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Key is one key of a repository (restic key list --json): each key is
// the repository's master key encrypted with one password.
type Key struct {
	ID string `json:"id"`
	// Current is true for the key the client's own password opened.
	Current  bool   `json:"current"`
	UserName string `json:"userName"`
	HostName string `json:"hostName"`
	// Created is when the key was added, as restic writes it: local time
	// of the machine that added it, without a zone ("2006-01-02
	// 15:04:05"); read in this process's zone.
	Created string `json:"created"`
}

// CreatedTime parses Created in loc (time.Local when nil); zero when it
// does not parse.
func (k Key) CreatedTime(loc *time.Location) time.Time {
	if loc == nil {
		loc = time.Local
	}
	t, _ := time.ParseInLocation(time.DateTime, k.Created, loc)
	return t
}

// ShortID is the first 8 characters of the key's ID, as restic shows IDs.
func (k Key) ShortID() string { return k.ID[:min(8, len(k.ID))] }

// Keys lists the repository's keys (restic key list --json --no-lock:
// reading the key files needs no lock, so a running backup or prune does
// not block it).
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	var buf bytes.Buffer
	if err := c.run(ctx, call{op: "key list", args: []string{"key", "list", "--json", "--no-lock"}, stdout: &buf, noLock: true}); err != nil {
		return nil, err
	}
	var keys []Key
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &keys); err != nil {
		return nil, fmt.Errorf("restic key list: parse output: %w", err)
	}
	return keys, nil
}

var savedKeyRE = regexp.MustCompile(`saved new key with ID ([0-9a-f]{64})`)

// AddKey adds a key whose password is the contents of newPasswordFile
// (restic key add --new-password-file; the password is never in argv,
// and restic reads it as it reads RESTIC_PASSWORD_FILE, surrounding white
// space removed). newPassword, when known, is only redacted from errors.
// It returns the new key's ID from restic's "saved new key with ID"
// line; "" when restic's output did not name it (the key was added all
// the same: Keys lists it).
func (c *Client) AddKey(ctx context.Context, newPasswordFile, newPassword string) (string, error) {
	var out bytes.Buffer
	err := c.run(ctx, call{op: "key add", args: []string{"key", "add", "--new-password-file", newPasswordFile}, stdout: &out, secrets: []string{newPassword}})
	if err != nil {
		return "", err
	}
	if m := savedKeyRE.FindSubmatch(out.Bytes()); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}

// WithPasswordFile returns a client of the same repository (URL,
// environment, binary) that opens it with the password in path instead:
// to prove a key just added.
func (c *Client) WithPasswordFile(path string) *Client {
	cfg := c.cfg
	cfg.PasswordFile, cfg.Password = path, ""
	cfg.RemoveStaleLocks = false
	return &Client{cfg: cfg, log: c.log}
}
