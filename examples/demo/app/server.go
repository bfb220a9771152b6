package main

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// maxSlow bounds /slow so a typo cannot hold a connection for hours.
const maxSlow = 5 * time.Minute

// newHandler serves /, /healthz and /slow for a config.
func newHandler(c *Config) http.Handler {
	mux := http.NewServeMux()
	var served atomic.Int64
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if !sleep(r, time.Duration(c.SlowMS)*time.Millisecond) {
			return
		}
		if failing(served.Add(1), c.ErrorRate) {
			http.Error(w, "injected fault (error_rate)", http.StatusInternalServerError)
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Demo-Build", build)
		mux.ServeHTTP(w, r)
	})
}

// failing reports whether the n-th request (from 1) is one of the share
// rate that fails: spread evenly, so any run of 1/rate requests holds
// exactly one failure.
func failing(n int64, rate float64) bool {
	if rate <= 0 {
		return false
	}
	return math.Floor(float64(n)*rate) > math.Floor(float64(n-1)*rate)
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
