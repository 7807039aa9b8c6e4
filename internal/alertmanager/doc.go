// Package alertmanager is a client of Prometheus Alertmanager's v2 HTTP
// API (https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml):
// the alerts it holds (GET /api/v2/alerts) and posting alerts to it
// (POST /api/v2/alerts).
//
// It is an adapter: it imports no homelab package.
package alertmanager
