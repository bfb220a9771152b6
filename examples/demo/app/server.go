package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// maxSlow bounds /slow so a typo cannot hold a connection for hours.
const maxSlow = 5 * time.Minute

// newHandler serves /, /healthz and /slow for a config.
func newHandler(c *Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if !sleep(r, time.Duration(c.SlowMS)*time.Millisecond) {
			return
		}
		body := "version=" + c.Version
		if c.Message != "" {
			body += " " + c.Message
		}
		fmt.Fprintln(w, body)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if c.FailHealthz {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 {
			http.Error(w, "ms: want a non-negative integer", http.StatusBadRequest)
			return
		}
		d := min(time.Duration(ms)*time.Millisecond, maxSlow)
		if !sleep(r, d) {
			return
		}
		fmt.Fprintf(w, "version=%s slept=%dms\n", c.Version, d.Milliseconds())
	})
	return mux
}

// sleep waits d or until the client goes away; it reports whether to answer.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
