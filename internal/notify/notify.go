package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// Options tunes a Notifier. Zero values take the defaults.
type Options struct {
	Log *slog.Logger // default: discard
	// Attempts is how many times a message or ping is tried. Default 5.
	Attempts int
	// Backoff is the delay before the first retry; it doubles for each
	// further retry up to MaxBackoff. Defaults 2s and 5m.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one attempt (one shoutrrr send, one ping). Default
	// 10s, shoutrrr's own.
	Timeout time.Duration
	// HTTPClient sends heartbeat pings. Default: a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// QueueSize is how many messages may wait per channel; beyond it
	// Notify drops the message and logs so. Default 64.
	QueueSize int
	// Now stamps events whose Time is zero. Default time.Now.
	Now func() time.Time
}

// Notifier delivers events to channels and pings heartbeats, in the
// background. Its methods are safe for concurrent use.
type Notifier struct {
	log        *slog.Logger
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	client     *http.Client
	now        func() time.Time
	channels   []*channel

	// ctx is canceled when Close gives up waiting: retries stop and
	// queued messages are dropped.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards closed and sending on channel queues
	closed  bool
	pending atomic.Int64   // messages queued or being delivered, pings running
	wg      sync.WaitGroup // channel workers and pings
}

// New validates every channel (see Validate; an empty Name becomes
// "notify[i]") and starts one delivery goroutine per channel. The error
// is a *ChannelError naming the first bad channel; it never contains a
// URL. Call Close to stop the goroutines.
func New(channels []Channel, o Options) (*Notifier, error) {
	n := &Notifier{
		log:        o.Log,
		attempts:   o.Attempts,
		backoff:    o.Backoff,
		maxBackoff: o.MaxBackoff,
		timeout:    o.Timeout,
		client:     o.HTTPClient,
		now:        o.Now,
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.attempts <= 0 {
		n.attempts = 5
	}
	if n.backoff <= 0 {
		n.backoff = 2 * time.Second
	}
	if n.maxBackoff <= 0 {
		n.maxBackoff = 5 * time.Minute
	}
	if n.timeout <= 0 {
		n.timeout = 10 * time.Second
	}
	if n.client == nil {
		n.client = &http.Client{Timeout: 10 * time.Second}
	}
	if n.now == nil {
		n.now = time.Now
	}
	queueSize := o.QueueSize
	if queueSize <= 0 {
		queueSize = 64
	}
	for i, c := range channels {
		if c.Name == "" {
			c.Name = fmt.Sprintf("notify[%d]", i)
		}
		ch, err := compile(c)
		if err != nil {
			return nil, err
		}
		ch.queue = make(chan Event, queueSize)
		n.channels = append(n.channels, ch)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, ch := range n.channels {
		n.wg.Go(func() {
			for e := range ch.queue {
				n.deliver(ch, e)
			}
		})
	}
	return n, nil
}

// Notify queues e for every channel whose On matches e.Kind and returns at
// once. Delivery happens in the background, with retries; failures are
// logged, never returned. After Close, or when a channel's queue is full,
// the event is dropped with a log line.
func (n *Notifier) Notify(e Event) {
	if e.Time.IsZero() {
		e.Time = n.now()
	}
	log := n.log.With("kind", e.Kind, "lab", e.Lab, "target", e.Target)
	if !slices.Contains(Kinds, e.Kind) {
		log.Warn("notify: unknown event kind, sending to channels that take all kinds")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		log.Warn("notify: notifier closed, event dropped")
		return
	}
	for _, ch := range n.channels {
		if !ch.wants(e.Kind) {
			continue
		}
		n.pending.Add(1)
		select {
		case ch.queue <- e:
		default:
			n.pending.Add(-1)
			log.Error("notify: queue full, event dropped", "channel", ch.name, "queue", cap(ch.queue))
		}
	}
}

// Ping sends an HTTP GET without a body to the heartbeat URL rawURL in the
// background, retried like a notification while it fails with a network
// error, a timeout, 408, 429 or 5xx; any other non-2xx status is final.
// rawURL is secret: logs show only its host. e gives the log context.
func (n *Notifier) Ping(rawURL string, e Event) {
	log := n.log.With("kind", e.Kind, "lab", e.Lab, "target", e.Target)
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		log.Error("notify: heartbeat URL is not an http(s) URL, not pinged")
		return
	}
	log = log.With("heartbeat", u.Host)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		log.Warn("notify: notifier closed, heartbeat dropped")
		return
	}
	n.pending.Add(1)
	n.wg.Go(func() {
		defer n.pending.Add(-1)
		n.retry(log, "heartbeat", rawURL, func(ctx context.Context) (bool, error) {
			return n.ping(ctx, rawURL)
		})
	})
}

// Close stops intake (later Notify and Ping calls are dropped) and waits
// for queued and in-flight deliveries, retries included. If ctx ends
// first, it abandons them, logs how many, and returns ctx.Err(); retries
// stop at once, though a shoutrrr send already under way may finish on
// its own. Close may be called more than once.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, ch := range n.channels {
			close(ch.queue)
		}
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		abandoned := n.pending.Load()
		n.cancel()
		<-done // every wait in a worker or ping also watches n.ctx
		n.log.Warn("notify: abandoned undelivered notifications and heartbeats", "count", abandoned, "error", ctx.Err())
		return ctx.Err()
	}
}

// deliver renders e for ch and sends it, with retries.
func (n *Notifier) deliver(ch *channel, e Event) {
	defer n.pending.Add(-1)
	if n.ctx.Err() != nil {
		return
	}
	log := n.log.With("channel", ch.name, "kind", e.Kind, "lab", e.Lab, "target", e.Target)
	title, body := ch.render(e, log)
	sl := serviceLogger{log: n.log, channel: ch.name, url: ch.url}
	n.retry(log, "notification", ch.url, func(ctx context.Context) (bool, error) {
		return false, n.send(ctx, ch.url, sl, title, body)
	})
}

// send makes one delivery attempt through a fresh shoutrrr service (so
// no service state is shared between concurrent or repeated sends). The
// send runs in its own goroutine because shoutrrr services take no
// context (the generic one posts with http.DefaultClient and no
// timeout); when the attempt times out or ctx ends it is left to finish
// alone, as shoutrrr's router does.
func (n *Notifier) send(ctx context.Context, rawURL string, sl serviceLogger, title, body string) error {
	svc, err := openService(rawURL, sl)
	if err != nil {
		return err
	}
	msg := message(svc, title, body)
	res := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				res <- fmt.Errorf("shoutrrr panicked: %v", r)
			}
		}()
		res <- svc.Send(msg, &types.Params{types.TitleKey: title})
	}()
	t := time.NewTimer(n.timeout)
	defer t.Stop()
	select {
	case err := <-res:
		return err
	case <-t.C:
		return fmt.Errorf("%s: timed out after %s", svc.GetID(), n.timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ping makes one heartbeat attempt. permanent reports a failure that a
// retry would not fix (a 4xx other than 408 and 429).
func (n *Notifier) ping(ctx context.Context, rawURL string) (permanent bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return true, err
	}
	req.Header.Set("User-Agent", "homelab")
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return false, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	permanent = resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests
	return permanent, fmt.Errorf("unexpected status %s", resp.Status)
}

// retry runs op until it succeeds, fails permanently, has run n.attempts
// times, or n.ctx is canceled, sleeping with exponential backoff between
// attempts. Every failed attempt logs one line: a warning while retries
// remain, an error on the last one. Error texts are redacted for rawURL.
func (n *Notifier) retry(log *slog.Logger, what, rawURL string, op func(context.Context) (permanent bool, err error)) {
	delay := min(n.backoff, n.maxBackoff)
	for attempt := 1; ; attempt++ {
		if n.ctx.Err() != nil {
			return // abandoned by Close, which logs the count
		}
		permanent, err := op(n.ctx)
		if err == nil {
			lvl := slog.LevelDebug
			if attempt > 1 {
				lvl = slog.LevelInfo
			}
			log.Log(context.Background(), lvl, "notify: "+what+" delivered", "attempt", attempt)
			return
		}
		if n.ctx.Err() != nil {
			return
		}
		msg := Redact(err.Error(), rawURL)
		if permanent || attempt >= n.attempts {
			log.Error("notify: "+what+" failed, giving up", "attempt", attempt, "attempts", n.attempts, "error", msg)
			return
		}
		log.Warn("notify: "+what+" failed, will retry", "attempt", attempt, "attempts", n.attempts, "retry_in", delay.String(), "error", msg)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			return
		}
		if delay > n.maxBackoff/2 {
			delay = n.maxBackoff
		} else {
			delay *= 2
		}
	}
}
