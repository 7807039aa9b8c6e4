package app

import (
	"fmt"

	"homelab/internal/notify"
)

// Notifier builds the notifier of the lab's notify entries, reading URLs
// given by url_env or url_file. A missing variable or file, or a URL
// shoutrrr rejects, is an error naming the entry (never the URL). The
// caller closes it (notify.Notifier.Close waits for delivery).
func (a *App) Notifier() (*notify.Notifier, error) {
	l := a.Lab
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
	return notify.New(chans, notify.Options{Log: a.log()})
}
