package certs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"homelab/internal/atomicfile"
	"homelab/internal/execx"
	"homelab/internal/lab"
)

var signals = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2}

// DescribeReload says in words how l's consumer is reloaded ("" when it
// is not).
func DescribeReload(l *lab.Leaf) string {
	r := l.Reload
	switch r.Kind() {
	case "pid_file":
		return fmt.Sprintf("signal %s to the pid in %s", r.Signal, r.PIDFile)
	case "container":
		return fmt.Sprintf("docker kill --signal %s %s", r.Signal, r.Container)
	case "command":
		return "sh -c " + strconv.Quote(r.Command)
	case "traefik_file":
		return "rewrite the Traefik dynamic file " + r.TraefikFile
	}
	return ""
}

// reload tells l's consumer that its files changed. It returns what it
// did, in words. Signals go to the pid read from pid_file (the first
// line); container reloads and commands run through execx with
// l.Reload.Timeout; commands run with /bin/sh -c in the lab file's
// directory with HOMELAB_CERT_NAME, HOMELAB_CERT_FILE, HOMELAB_KEY_FILE
// and HOMELAB_BUNDLE_FILE set.
func reload(ctx context.Context, lb *lab.Lab, l *lab.Leaf) (string, error) {
	r := l.Reload
	switch r.Kind() {
	case "pid_file":
		pid, err := readPID(r.PIDFile)
		if err != nil {
			return "", err
		}
		sig, ok := signals[r.Signal]
		if !ok {
			return "", fmt.Errorf("unknown signal %q", r.Signal)
		}
		if err := syscall.Kill(pid, sig); err != nil {
			return "", fmt.Errorf("signal %s to pid %d (from %s): %w", r.Signal, pid, r.PIDFile, err)
		}
		return fmt.Sprintf("signal %s to pid %d", r.Signal, pid), nil
	case "container":
		ctx, cancel := context.WithTimeout(ctx, r.Timeout)
		defer cancel()
		if err := execx.Run(ctx, execx.Cmd{Name: "docker", Args: []string{"kill", "--signal", r.Signal, r.Container}}); err != nil {
			return "", err
		}
		return fmt.Sprintf("signal %s to container %s", r.Signal, r.Container), nil
	case "command":
		ctx, cancel := context.WithTimeout(ctx, r.Timeout)
		defer cancel()
		err := execx.Run(ctx, execx.Cmd{
			Name: "sh", Args: []string{"-c", r.Command}, Dir: filepath.Dir(lb.Path),
			Env: []string{"HOMELAB_CERT_NAME=" + l.Name, "HOMELAB_CERT_FILE=" + l.CertFile, "HOMELAB_KEY_FILE=" + l.KeyFile, "HOMELAB_BUNDLE_FILE=" + l.BundleFile},
		})
		if err != nil {
			return "", err
		}
		return "ran " + strconv.Quote(r.Command), nil
	case "traefik_file":
		if err := WriteTraefikFile(lb, r.TraefikFile); err != nil {
			return "", err
		}
		return "rewrote " + r.TraefikFile, nil
	}
	return "", nil
}

// readPID reads the first line of a pid file. Pids below 1 are refused:
// kill(2) would signal whole process groups.
func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid < 1 {
		return 0, fmt.Errorf("pid file %s: bad pid %q", path, first)
	}
	return pid, nil
}

// signalWaiting reports whether sig is blocked by pid or pending in it
// (the SigBlk, SigPnd and ShdPnd masks of /proc/PID/status, proc(5)): a
// process in that state has not yet acted on a signal sent before.
func signalWaiting(pid int, sig syscall.Signal) (bool, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false, err
	}
	bit := uint64(1) << (uint(sig) - 1)
	for _, line := range strings.Split(string(data), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || name != "SigBlk" && name != "SigPnd" && name != "ShdPnd" {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return false, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		if mask&bit != 0 {
			return true, nil
		}
	}
	return false, nil
}

// traefikDynamic is the part of a Traefik dynamic configuration homelab
// writes (https://doc.traefik.io/traefik/https/tls/#user-defined).
type traefikDynamic struct {
	TLS struct {
		Certificates []traefikCert `yaml:"certificates"`
	} `yaml:"tls"`
}

type traefikCert struct {
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// WriteTraefikFile writes, atomically, the Traefik dynamic configuration
// file path with one tls.certificates entry (certFile, keyFile) for every
// leaf of lb whose reload.traefik_file is path, sorted by leaf name. The
// file belongs to homelab: point Traefik's file provider (with watch) at
// it, or at its directory. Traefik's file provider reads the certificate
// files when the configuration changes, so rewriting this file after a
// swap makes it load the new pair.
func WriteTraefikFile(lb *lab.Lab, path string) error {
	var doc traefikDynamic
	var names []string
	for _, name := range lb.Certs.LeafNames() {
		l := lb.Certs.Leaves[name]
		if l.Reload.TraefikFile == path {
			doc.TLS.Certificates = append(doc.TLS.Certificates, traefikCert{CertFile: l.CertFile, KeyFile: l.KeyFile})
			names = append(names, name)
		}
	}
	var body bytes.Buffer
	enc := yaml.NewEncoder(&body)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("traefik file %s: %w", path, err)
	}
	// The fingerprints make every rotation a change of the file's bytes,
	// whatever Traefik's watcher compares.
	header := "# Written by homelab (cert rotate) for the leaves " + strings.Join(names, ", ") + "; edits are overwritten.\n"
	for _, c := range doc.TLS.Certificates {
		if data, err := os.ReadFile(c.CertFile); err == nil {
			if cert, err := ParseCert(data); err == nil {
				header += "# " + filepath.Base(c.CertFile) + " sha256 " + Fingerprint(cert) + "\n"
			}
		}
	}
	return atomicfile.Write(path, append([]byte(header), body.Bytes()...), certPerm, certMask)
}
