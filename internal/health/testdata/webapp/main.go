// Command webapp is the container of the container probe's tests: a tiny
// static HTTP server for an image built FROM scratch, whose HEALTHCHECK
// runs `/app -check` (a GET of its own /healthz).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve on")
	check := flag.Bool("check", false, "check http://127.0.0.1:8080/healthz and exit 0 when it answers 200")
	flag.Parse()
	if *check {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://127.0.0.1:8080/healthz")
		if err != nil {
			fmt.Fprintln(os.Stderr, "check:", err)
			os.Exit(1)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "check: HTTP", resp.StatusCode)
			os.Exit(1)
		}
		fmt.Println("ok")
		return
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	fmt.Println("serving on", *addr)
	if err := http.ListenAndServe(*addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
