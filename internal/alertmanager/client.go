package alertmanager

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to one Alertmanager.
type Client struct {
	// URL is its base URL ("http://127.0.0.1:9093"); the API is under
	// URL/api/v2.
	URL string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTP is the client used; default one with a 10-second timeout.
	HTTP *http.Client
}

// New returns a client of the Alertmanager at base, trusting the CA
// certificates in caFile (PEM) besides the system's when caFile is set.
func New(base, token, caFile string) (*Client, error) {
	if _, err := url.Parse(base); err != nil {
		return nil, fmt.Errorf("alertmanager url: %w", err)
	}
	c := &Client{URL: strings.TrimSuffix(base, "/"), Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("alertmanager ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("alertmanager ca_file %s: no PEM certificate", caFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.HTTP.Transport = tr
	}
	return c, nil
}

// Alert is an alert as Alertmanager holds it (gettableAlert).
type Alert struct {
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		// State is active, suppressed (silenced or inhibited) or
		// unprocessed.
		State string `json:"state"`
		// SilencedBy are the IDs of the silences that mute it;
		// InhibitedBy the fingerprints of the alerts that inhibit it.
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// Suppressed tells whether Alertmanager notifies no one of it: it is
// silenced or inhibited (state suppressed). It is still active.
func (a Alert) Suppressed() bool { return a.Status.State == "suppressed" }

// Name is the alert's alertname label.
func (a Alert) Name() string { return a.Labels["alertname"] }

// Severity is its severity label ("" when none).
func (a Alert) Severity() string { return a.Labels["severity"] }

// Summary is its summary annotation, else its description.
func (a Alert) Summary() string {
	if s := a.Annotations["summary"]; s != "" {
		return s
	}
	return a.Annotations["description"]
}

// PostableAlert is an alert sent to Alertmanager. A zero EndsAt leaves
// it firing until Alertmanager's resolve_timeout passes without it being
// sent again; an EndsAt in the past resolves it.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Alerts returns the alerts Alertmanager has active now, as it orders
// them, the suppressed ones (silenced or inhibited; Alert.Suppressed)
// included: GET /api/v2/alerts?active=true&silenced=true&inhibited=true&
// unprocessed=true. A resolved alert is in none. An error says what
// failed: the connection, or the HTTP status and the start of the body.
func (c *Client) Alerts(ctx context.Context) ([]Alert, error) {
	q := url.Values{"active": {"true"}, "silenced": {"true"}, "inhibited": {"true"}, "unprocessed": {"true"}}
	var out []Alert
	if err := c.get(ctx, "/api/v2/alerts?"+q.Encode(), "alerts", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Firing returns those of Alerts that are not suppressed: the alerts
// Alertmanager notifies of now.
func (c *Client) Firing(ctx context.Context) ([]Alert, error) {
	all, err := c.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	var out []Alert
	for _, a := range all {
		if !a.Suppressed() {
			out = append(out, a)
		}
	}
	return out, nil
}

// Matcher is a silence's condition on one label: its value equals (or
// with IsRegex, matches) Value; with IsEqual false it must not.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

// Silence is a silence of Alertmanager: it mutes the alerts matching all
// its Matchers from StartsAt to EndsAt (postableSilence;
// gettableSilence with ID and State).
type Silence struct {
	ID        string    `json:"id,omitempty"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	// Status.State is active, pending or expired (read only).
	Status *struct {
		State string `json:"state"`
	} `json:"status,omitempty"`
}

// Silences returns all the silences Alertmanager holds, expired ones
// included (GET /api/v2/silences).
func (c *Client) Silences(ctx context.Context) ([]Silence, error) {
	var out []Silence
	if err := c.get(ctx, "/api/v2/silences", "silences", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// PostSilence creates s (or, with its ID set, replaces that silence) and
// returns its ID (POST /api/v2/silences).
func (c *Client) PostSilence(ctx context.Context, s Silence) (string, error) {
	s.Status = nil
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("alertmanager: post silence: %w", err)
	}
	body, err := c.do(ctx, http.MethodPost, "/api/v2/silences", b)
	if err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"silenceID"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", fmt.Errorf("alertmanager: post silence: %w", err)
	}
	return out.ID, nil
}

// ExpireSilence ends the silence id now (DELETE /api/v2/silence/{id}).
func (c *Client) ExpireSilence(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/api/v2/silence/"+url.PathEscape(id), nil)
	return err
}

// get decodes the JSON answer of GET path into out; what names it in an
// error.
func (c *Client) get(ctx context.Context, path, what string, out any) error {
	body, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("alertmanager: %s: %w", what, err)
	}
	return nil
}

// Post sends alerts (POST /api/v2/alerts).
func (c *Client) Post(ctx context.Context, alerts []PostableAlert) error {
	b, err := json.Marshal(alerts)
	if err != nil {
		return fmt.Errorf("alertmanager: post alerts: %w", err)
	}
	_, err = c.do(ctx, http.MethodPost, "/api/v2/alerts", b)
	return err
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(b))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return nil, fmt.Errorf("alertmanager: %s %s: %s: %s", method, strings.SplitN(path, "?", 2)[0], resp.Status, msg)
	}
	return b, nil
}
