package health

import (
	"net"
	"testing"
	"time"

	"homelab/internal/lab"
)

// closedAddr is a loopback address where nothing listens: a port that was
// free a moment ago.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// listen returns the address of a real listener that accepts connections
// and holds them open, silent, until the test ends.
func listen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestTCP(t *testing.T) {
	t.Parallel()
	open := listen(t)
	runConformance(t, conformance{
		kind: lab.ProbeTCP,
		healthy: func(t *testing.T) *lab.Health {
			return &lab.Health{TCP: &lab.TCPProbe{Address: open, Timeout: 5 * time.Second}}
		},
		unhealthy: func(t *testing.T) (*lab.Health, string) {
			return &lab.Health{TCP: &lab.TCPProbe{Address: closedAddr(t), Timeout: 5 * time.Second}}, "connection refused"
		},
		// A dial either connects or is refused on loopback; a hang would
		// need a host that drops packets, which a test cannot count on.
	})
}
