package fleet

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPLoad sends HTTP GET requests to one URL from a few workers until Stop,
// counting answers and failures (connection errors and non-2xx answers).
// It is bounded: each worker stops by itself after its share of max
// requests. Keep-alive is off, so every request is a new connection through
// the load balancer, as a drained server must not get one.
type HTTPLoad struct {
	OK, Failed atomic.Int64 // answered with 2xx; failed (connection error or non-2xx)
	mu         sync.Mutex
	errs       []string
	stop, done chan struct{}
	stopOnce   sync.Once
}

// StartLoad starts workers goroutines sending up to max requests in all to
// url, each pausing pause between its requests.
func StartLoad(url string, workers, max int, pause time.Duration) *HTTPLoad {
	l := &HTTPLoad{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range max / workers {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					l.fail(fmt.Sprintf("status %d: %s", resp.StatusCode, body))
					continue
				}
				l.OK.Add(1)
				time.Sleep(pause)
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

func (l *HTTPLoad) fail(s string) {
	l.Failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+s)
	}
	l.mu.Unlock()
}

// Stop stops the workers, waits for them, and returns how many requests
// were answered and how many failed, with the first few failures.
func (l *HTTPLoad) Stop() (ok, failed int64, errs []string) {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	return l.OK.Load(), l.Failed.Load(), l.Errs()
}

// Errs returns the first few failures, each with the time it happened.
func (l *HTTPLoad) Errs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}
