package fleet

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadCountsAnswersAndFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("version=1\n"))
	}))
	defer srv.Close()
	l := StartLoad(srv.URL, 2, 40, 0)
	// Bounded: the workers stop by themselves after 40 requests.
	deadline := time.Now().Add(10 * time.Second)
	for n.Load() < 40 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ok, failed, errs := l.Stop()
	if ok+failed != 40 || ok != 20 || failed != 20 {
		t.Fatalf("ok %d, failed %d, want 20 and 20 of 40 requests", ok, failed)
	}
	if len(errs) != 10 || !strings.Contains(errs[0], "status 503") {
		t.Errorf("errs = %q, want the first 10 failures, naming status 503", errs)
	}
	if ok2, failed2, _ := l.Stop(); ok2 != ok || failed2 != failed {
		t.Errorf("a second Stop changed the counts")
	}
}

func TestLoadCountsConnectionErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	l := StartLoad(url, 1, 3, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-l.done:
		default:
			if time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
		}
		break
	}
	ok, failed, errs := l.Stop()
	if ok != 0 || failed != 3 || len(errs) != 3 {
		t.Fatalf("ok %d, failed %d, errs %q: want 3 connection failures", ok, failed, errs)
	}
}
