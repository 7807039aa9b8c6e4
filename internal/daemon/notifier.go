package daemon

import (
	"fmt"
	"log/slog"

	"homelab/internal/lab"
	"homelab/internal/notify"
)

// NewNotifier builds the notifier of l's notify entries, reading URLs
// given by url_env or url_file. A missing variable or file, or a URL
// shoutrrr rejects, is an error naming the entry (never the URL).
func NewNotifier(l *lab.Lab, log *slog.Logger) (Notifier, error) {
	chans := make([]notify.Channel, 0, len(l.Notify))
	for i, n := range l.Notify {
		name := fmt.Sprintf("notify[%d]", i)
		url := n.URL
		if s := n.URLSecret(); s.IsSet() {
			v, err := s.Resolve()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			url = v
		}
		chans = append(chans, notify.Channel{Name: name, URL: url, On: n.On, Title: n.Title, Body: n.Body})
	}
	return notify.New(chans, notify.Options{Log: log})
}
