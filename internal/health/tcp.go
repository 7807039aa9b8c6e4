package health

import (
	"context"
	"net"
	"time"

	"homelab/internal/lab"
)

// probeTCP opens and closes a TCP connection to p.Address.
func probeTCP(ctx context.Context, p *lab.TCPProbe) (string, error) {
	var d net.Dialer
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", p.Address)
	if err != nil {
		return "", err
	}
	conn.Close()
	return "connected in " + ms(time.Since(start)), nil
}
