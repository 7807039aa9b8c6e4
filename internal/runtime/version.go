package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"homelab/internal/atomicfile"
	"homelab/internal/lab"
)

// Versioner is a runtime that can read and change the service's version,
// for upgrades.
type Versioner interface {
	// Version is the version the runtime is set to run: a compose
	// service's image tag, or what an exec/systemd version command prints
	// (its first line, trimmed; the caller picks the version out of it).
	Version(ctx context.Context) (string, error)
	// SetVersion changes the version and (re)starts the service on it; it
	// returns when the runtime has done so, not when it is healthy.
	SetVersion(ctx context.Context, version string) error
}

// ErrNoVersion is returned by AsVersioner for a runtime that cannot
// change versions (no compose file, no set_version command).
var ErrNoVersion = errors.New("the runtime cannot change the version")

// AsVersioner returns rt as a Versioner when its configuration allows.
func AsVersioner(rt Runtime) (Versioner, error) {
	switch r := rt.(type) {
	case *composeRuntime:
		if r.cfg.File != "" {
			return r, nil
		}
	case *execRuntime:
		if r.cfg.SetVersion != "" {
			return r, nil
		}
	case *systemdRuntime:
		if r.cfg.SetVersion != "" {
			return r, nil
		}
	case Versioner:
		return r, nil
	}
	return nil, ErrNoVersion
}

// Preparer is a Versioner that can make a version ready before anything
// changes (a compose service's image pulled while the old version still
// runs), so that a version that cannot be had fails an upgrade before the
// service is stopped, and the downtime is not spent downloading.
type Preparer interface {
	Prepare(ctx context.Context, version string) error
}

// PullTimeout bounds the pull of an image by Prepare.
const PullTimeout = time.Hour

// Prepare makes the service's image at tag version present on this host:
// `docker image inspect`, else `docker pull` (bounded by PullTimeout),
// unless the compose file gives the service pull_policy: never (an image
// built or loaded locally), which fails with the reason.
func (r *composeRuntime) Prepare(ctx context.Context, version string) error {
	img, err := r.readImage()
	if err != nil {
		return err
	}
	ref := img.repo + ":" + version
	if _, err := r.cmd(ctx, "image inspect", "image", "inspect", "--format", "{{.Id}}", ref); err == nil {
		return nil
	}
	if p := lookup(img.service, "pull_policy"); p != nil && p.Value == "never" {
		return fmt.Errorf("service %s: image %s is not on this host and the service's pull_policy is never: build or load it first", r.name, ref)
	}
	if _, err := r.cmdWithin(ctx, PullTimeout, "pull", "pull", "--quiet", ref); err != nil {
		return fmt.Errorf("image %s is not available: %w", ref, err)
	}
	return nil
}

var _ Preparer = (*composeRuntime)(nil)

// Version is the tag of the service's image in the compose file.
func (r *composeRuntime) Version(ctx context.Context) (string, error) {
	img, err := r.readImage()
	return img.tag, err
}

// SetVersion changes the tag of the service's image in the compose file
// and recreates the service's containers on it (`docker compose up -d
// --no-deps <service>`). The file is edited where the image is written,
// leaving the rest byte for byte as it was (comments, order, quoting);
// the previous file is kept as <file>.bak, and the new one replaces it
// atomically.
func (r *composeRuntime) SetVersion(ctx context.Context, version string) error {
	return r.setVersion(ctx, version, true)
}

// StoppedVersioner is a Versioner that can also set a version without
// starting the service (a rollback that leaves the service stopped).
// Versioners whose SetVersion starts nothing (exec, systemd) need not
// implement it.
type StoppedVersioner interface {
	SetVersionStopped(ctx context.Context, version string) error
}

// SetVersionStopped is SetVersion with the containers recreated on the
// new image but not started (`docker compose up --no-start --no-deps`),
// so that a later start runs that version, not the old containers.
func (r *composeRuntime) SetVersionStopped(ctx context.Context, version string) error {
	return r.setVersion(ctx, version, false)
}

var _ StoppedVersioner = (*composeRuntime)(nil)

func (r *composeRuntime) setVersion(ctx context.Context, version string, start bool) error {
	if strings.ContainsAny(version, " \t\n:@/\"'") || version == "" {
		return fmt.Errorf("bad image tag %q", version)
	}
	data, err := os.ReadFile(r.cfg.File)
	if err != nil {
		return err
	}
	out, err := r.retag(data, version)
	if err != nil {
		return err
	}
	if !bytes.Equal(out, data) {
		fi, err := os.Stat(r.cfg.File)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(r.cfg.File+".bak", data, fi.Mode().Perm(), 0o777); err != nil {
			return fmt.Errorf("keep %s.bak: %w", filepath.Base(r.cfg.File), err)
		}
		if err := atomicfile.Write(r.cfg.File, out, fi.Mode().Perm(), 0o777); err != nil {
			return err
		}
	}
	if !start {
		_, err = r.compose(ctx, "up", "--no-start", "--no-deps", r.cfg.Service)
		return err
	}
	_, err = r.compose(ctx, "up", "--detach", "--no-deps", r.cfg.Service)
	return err
}

// retag returns data with the service's image tag replaced by tag.
func (r *composeRuntime) retag(data []byte, tag string) ([]byte, error) {
	img, err := r.image(data)
	if err != nil {
		return nil, err
	}
	n, repo := img.node, img.repo
	// Find the scalar's text at its position: line n.Line, column
	// n.Column (1-based, in runes, of the value or its opening quote).
	lines := bytes.SplitAfter(data, []byte("\n"))
	if n.Line < 1 || n.Line > len(lines) {
		return nil, fmt.Errorf("%s: image of %s not found at line %d", r.cfg.File, r.cfg.Service, n.Line)
	}
	line := string(lines[n.Line-1])
	runes := []rune(line)
	if n.Column < 1 || n.Column > len(runes) {
		return nil, fmt.Errorf("%s:%d: image of %s not found at column %d", r.cfg.File, n.Line, r.cfg.Service, n.Column)
	}
	start := len(string(runes[:n.Column-1]))
	quote := ""
	switch n.Style {
	case yaml.DoubleQuotedStyle:
		quote = `"`
	case yaml.SingleQuotedStyle:
		quote = `'`
	case 0, yaml.FlowStyle:
	default:
		return nil, fmt.Errorf("%s:%d: services.%s.image: write the image on one line, plain or quoted", r.cfg.File, n.Line, r.cfg.Service)
	}
	old := quote + n.Value + quote
	if !strings.HasPrefix(line[start:], old) {
		return nil, fmt.Errorf("%s:%d: services.%s.image: cannot edit %q in place (escapes?)", r.cfg.File, n.Line, r.cfg.Service, n.Value)
	}
	lines[n.Line-1] = []byte(line[:start] + quote + repo + ":" + tag + quote + line[start+len(old):])
	out := bytes.Join(lines, nil)
	// The edit must read back as the intended image and nothing else.
	if m, err := r.image(out); err != nil || m.node.Value != repo+":"+tag {
		return nil, fmt.Errorf("%s: editing the image tag of %s did not give %s:%s", r.cfg.File, r.cfg.Service, repo, tag)
	}
	return out, nil
}

// composeImage is a compose service's image as its file writes it.
type composeImage struct {
	node      *yaml.Node // the image scalar, with its position
	service   *yaml.Node // the service's mapping
	repo, tag string
}

// readImage reads the compose file and finds the service's image in it.
func (r *composeRuntime) readImage() (composeImage, error) {
	data, err := os.ReadFile(r.cfg.File)
	if err != nil {
		return composeImage{}, err
	}
	return r.image(data)
}

// image finds services.<service>.image in a compose file's data and
// splits it into repository and tag (splitImage).
func (r *composeRuntime) image(data []byte) (composeImage, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return composeImage{}, fmt.Errorf("%s: %w", r.cfg.File, err)
	}
	if len(doc.Content) == 0 {
		return composeImage{}, fmt.Errorf("%s: empty compose file", r.cfg.File)
	}
	svc := lookup(lookup(doc.Content[0], "services"), r.cfg.Service)
	if svc == nil {
		return composeImage{}, fmt.Errorf("%s: no service %q under services", r.cfg.File, r.cfg.Service)
	}
	img := lookup(svc, "image")
	if img == nil || img.Kind != yaml.ScalarNode {
		return composeImage{}, fmt.Errorf("%s:%d: services.%s has no image (a service built from source has no tag to change)", r.cfg.File, svc.Line, r.cfg.Service)
	}
	repo, tag, err := splitImage(img.Value)
	if err != nil {
		return composeImage{}, fmt.Errorf("%s:%d: services.%s.image: %w", r.cfg.File, img.Line, r.cfg.Service, err)
	}
	return composeImage{node: img, service: svc, repo: repo, tag: tag}, nil
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// splitImage splits an image reference into repository and tag
// ("registry:5000/app:1.2" -> "registry:5000/app", "1.2"). A digest
// (@sha256:...), a variable (${TAG}) or no tag is an error: there is no
// tag to change.
func splitImage(ref string) (repo, tag string, err error) {
	switch {
	case strings.Contains(ref, "$"):
		return "", "", fmt.Errorf("image %q uses a variable: write the tag in the file for homelab to change it", ref)
	case strings.Contains(ref, "@"):
		return "", "", fmt.Errorf("image %q is pinned by digest: write it with a tag", ref)
	}
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return "", "", fmt.Errorf("image %q has no tag (it means :latest): write the version, such as %s:1.2.3", ref, ref)
	}
	return ref[:i], ref[i+1:], nil
}

// Version runs the version command and returns its first line.
func (r *execRuntime) Version(ctx context.Context) (string, error) {
	if r.cfg.Version == "" {
		return "", fmt.Errorf("service %s: no version command", r.name)
	}
	out, _, err := r.run(ctx, "version", r.cfg.Version)
	if err != nil {
		return "", fmt.Errorf("service %s: version command %q: %w%s", r.name, r.cfg.Version, err, suffix(out))
	}
	return firstLine(out), nil
}

// SetVersion runs the set_version template with the version.
func (r *execRuntime) SetVersion(ctx context.Context, version string) error {
	cmd, err := expand(r.cfg.SetVersion, r.name, version)
	if err != nil {
		return err
	}
	if out, _, err := r.run(ctx, "set_version", cmd); err != nil {
		return fmt.Errorf("service %s: set_version command %q: %w%s", r.name, cmd, err, suffix(out))
	}
	return nil
}

// expand fills a version command template.
func expand(text, service, version string) (string, error) {
	t, err := template.New("set_version").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, struct{ Service, Version string }{service, version}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// commands is the exec runtime that runs a systemd unit's version
// commands: /bin/sh -c in the lab file's directory, bounded by the
// runtime's timeout.
func (r *systemdRuntime) commands() *execRuntime {
	return newExec(r.name, &lab.ExecRuntime{Dir: r.cfg.Dir, Timeout: r.cfg.Timeout, VersionCommands: r.cfg.VersionCommands})
}

// Version runs the version command and returns its first line.
func (r *systemdRuntime) Version(ctx context.Context) (string, error) {
	return r.commands().Version(ctx)
}

// SetVersion runs the set_version template with the version (a package
// install, say); the unit is stopped and started around it by the caller.
func (r *systemdRuntime) SetVersion(ctx context.Context, version string) error {
	return r.commands().SetVersion(ctx, version)
}

var _ Versioner = (*composeRuntime)(nil)
var _ Versioner = (*execRuntime)(nil)
