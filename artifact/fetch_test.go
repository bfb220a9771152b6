package artifact

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rollout-sh/rollout/plan"
)

func TestFetch(t *testing.T) {
	body := []byte("the artifact")
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write(body)
		case "/short":
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	f := &Fetcher{}
	good := plan.ArtifactSpec{Name: "a", Source: srv.URL + "/ok", SHA256: Sum(body)}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := f.Fetch(ctx, good); err != nil || string(got) != string(body) {
				t.Errorf("fetch: %q, %v", got, err)
			}
		}()
	}
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Errorf("%d requests for one artifact, want 1", n)
	}

	wrong := good
	wrong.SHA256 = strings.Repeat("0", 64)
	_, err := f.Fetch(ctx, wrong)
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Expected != wrong.SHA256 || ce.Actual != Sum(body) || !strings.Contains(err.Error(), good.Source) {
		t.Errorf("wrong checksum: %v", err)
	}
	if _, err := f.Fetch(ctx, plan.ArtifactSpec{Source: srv.URL + "/gone", SHA256: Sum(body)}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	if _, err := f.Fetch(ctx, plan.ArtifactSpec{Source: srv.URL + "/short", SHA256: Sum(body)}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated: %v", err)
	}
	big := &Fetcher{Limits: Limits{Download: 4, Unpacked: 4, Entries: 1}}
	if _, err := big.Fetch(ctx, good); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("over the limit: %v", err)
	}

	file := filepath.Join(t.TempDir(), "app.bin")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Fetch(ctx, plan.ArtifactSpec{Source: file, SHA256: Sum(body)}); err != nil || string(got) != string(body) {
		t.Errorf("controller path: %q, %v", got, err)
	}
}
