package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"text/template"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/services/specialized/generic"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// Channel is one place notifications go.
type Channel struct {
	// Name identifies the channel in logs and errors, e.g. "notify[0]";
	// never the URL. New defaults it to "notify[i]".
	Name string
	// URL is a shoutrrr URL (ntfy://, gotify://, slack://, discord://,
	// smtp://, generic://, generic+https://...). SECRET: it is never
	// logged and never part of an error.
	URL string
	// On lists the event kinds (Kinds) sent to this channel; empty means
	// all.
	On []string
	// Title and Body are optional text/template texts executed with the
	// Event; empty means DefaultTitle and DefaultBody.
	Title string
	Body  string
}

// Errors wrapped by *ChannelError, for errors.Is.
var (
	ErrBadURL      = errors.New("bad notification URL")
	ErrBadTemplate = errors.New("bad template")
	ErrBadKind     = errors.New("unknown event kind")
)

// ChannelError is a Channel that New or Validate rejected. Its text names
// the channel and never contains the URL or its credentials.
type ChannelError struct {
	Channel string // Channel.Name
	Err     error  // wraps ErrBadURL, ErrBadTemplate or ErrBadKind; already redacted
}

func (e *ChannelError) Error() string { return "notify channel " + e.Channel + ": " + e.Err.Error() }

func (e *ChannelError) Unwrap() error { return e.Err }

// channel is a validated Channel.
type channel struct {
	name        string
	url         string
	on          []string // nil: all
	title, body *template.Template
	queue       chan Event
}

// Validate checks one channel as New does: the URL is one shoutrrr
// accepts (known service, well formed, the service's own settings valid),
// On names only Kinds, and Title and Body parse and execute with an Event.
// The error is a *ChannelError.
func Validate(c Channel) error {
	if c.Name == "" {
		c.Name = "notify"
	}
	_, err := compile(c)
	return err
}

// CheckURL checks a notification URL as Validate does. Its error says
// what is wrong without naming a channel and without repeating the URL,
// so the lab file loader can report it at the url field.
func CheckURL(rawURL string) error {
	if _, err := openService(rawURL, nil); err != nil {
		return errors.New(Redact(err.Error(), rawURL))
	}
	return nil
}

// compile validates c and prepares it for delivery.
func compile(c Channel) (*channel, error) {
	fail := func(kind error, format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		return &ChannelError{Channel: c.Name, Err: fmt.Errorf("%w: %s", kind, Redact(msg, c.URL))}
	}
	if c.URL == "" {
		return nil, fail(ErrBadURL, "empty URL")
	}
	if _, err := openService(c.URL, nil); err != nil {
		return nil, fail(ErrBadURL, "%v", err)
	}
	ch := &channel{name: c.Name, url: c.URL}
	for _, k := range c.On {
		if !slices.Contains(Kinds, k) {
			return nil, fail(ErrBadKind, "%q (known: %s)", k, strings.Join(Kinds, ", "))
		}
	}
	if len(c.On) > 0 {
		ch.on = slices.Clone(c.On)
	}
	var err error
	if ch.title, err = parseTemplate("title", c.Title); err != nil {
		return nil, fail(ErrBadTemplate, "%v", err)
	}
	if ch.body, err = parseTemplate("body", c.Body); err != nil {
		return nil, fail(ErrBadTemplate, "%v", err)
	}
	return ch, nil
}

// CheckTemplate checks a title or body template as New does: it must
// parse and execute on an Event (a field Event lacks is an error).
func CheckTemplate(text string) error {
	_, err := parseTemplate("template", text)
	return err
}

// parseTemplate parses text and executes it once with sampleEvent, so a
// reference to a field Event lacks fails now rather than at delivery.
// Empty text gives a nil template (use the default).
func parseTemplate(name, text string) (*template.Template, error) {
	if text == "" {
		return nil, nil
	}
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if err := t.Execute(new(strings.Builder), sampleEvent); err != nil {
		return nil, err
	}
	return t, nil
}

// wants reports whether the channel takes events of kind.
func (c *channel) wants(kind string) bool {
	return c.on == nil || slices.Contains(c.on, kind)
}

// render returns the title and body for e, falling back to the defaults
// (and logging why) when a template fails.
func (c *channel) render(e Event, log *slog.Logger) (title, body string) {
	exec := func(t *template.Template, def func(Event) string) string {
		if t == nil {
			return def(e)
		}
		var b strings.Builder
		if err := t.Execute(&b, e); err != nil {
			log.Warn("notify: template failed, using the default", "channel", c.name, "template", t.Name(), "error", err)
			return def(e)
		}
		return b.String()
	}
	return exec(c.title, DefaultTitle), exec(c.body, DefaultBody)
}

// openService returns a ready shoutrrr service for rawURL. It does what
// router.ServiceRouter.Locate does, but keeps the reason a service
// rejects its URL (the router replaces it with "failed to initialize
// service") and does not panic on a generic+ URL with a bad parameter
// (the router calls String on the nil URL it got back). Its errors may
// still hold pieces of rawURL: pass them through Redact.
func openService(rawURL string, logger types.StdLogger) (types.Service, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("malformed URL: %w", err)
	}
	if u.Scheme == "" {
		return nil, errors.New("malformed URL: no scheme such as ntfy:// or generic+https://")
	}
	scheme, _, custom := strings.Cut(u.Scheme, "+")
	var r router.ServiceRouter
	svc, err := r.NewService(scheme)
	if err != nil {
		known := r.ListServices()
		slices.Sort(known)
		return nil, fmt.Errorf("unknown service %q (known: %s)", scheme, strings.Join(known, ", "))
	}
	cfg := u
	if custom {
		cs, ok := svc.(types.CustomURLService)
		if !ok {
			return nil, fmt.Errorf("service %q does not take %s:// URLs", scheme, u.Scheme)
		}
		if cfg, err = cs.GetConfigURLFromCustom(u); err != nil {
			return nil, fmt.Errorf("%s URL: %w", u.Scheme, err)
		}
	}
	if err := svc.Initialize(cfg, logger); err != nil {
		return nil, fmt.Errorf("%s: %w", scheme, err)
	}
	return svc, nil
}

// message returns the text to send through svc: body, or, for a generic
// webhook without a payload template (which posts only the message as
// text/plain and drops the title), the title, a blank line and the body.
func message(svc types.Service, title, body string) string {
	if g, ok := svc.(*generic.Service); ok && g.Config != nil && g.Config.Template == "" {
		return title + "\n\n" + body
	}
	return body
}

// serviceLogger passes what a shoutrrr service logs (such as a webhook's
// response body) to slog at debug level, redacted.
type serviceLogger struct {
	log     *slog.Logger
	channel string
	url     string
}

func (l serviceLogger) Print(v ...any)                 { l.out(fmt.Sprint(v...)) }
func (l serviceLogger) Printf(format string, v ...any) { l.out(fmt.Sprintf(format, v...)) }
func (l serviceLogger) Println(v ...any)               { l.out(fmt.Sprintln(v...)) }

func (l serviceLogger) out(s string) {
	l.log.Debug("notify: service log", "channel", l.channel, "text", Redact(strings.TrimSpace(s), l.url))
}
