package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.String()
}

func TestHandler(t *testing.T) {
	h := newHandler(&Config{Version: "7", Message: "hi from web2"})
	tests := []struct {
		target string
		code   int
		body   string
	}{
		{"/", 200, "version=7 hi from web2\n"},
		{"/healthz", 200, "ok\n"},
		{"/slow?ms=1", 200, "version=7 slept=1ms\n"},
		{"/slow?ms=x", 400, "ms: want a non-negative integer\n"},
		{"/nope", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		code, body := get(t, h, tt.target)
		if code != tt.code || body != tt.body {
			t.Errorf("GET %s = %d %q, want %d %q", tt.target, code, body, tt.code, tt.body)
		}
	}
}

func TestHandlerFailHealthzAndNoMessage(t *testing.T) {
	h := newHandler(&Config{Version: "3", FailHealthz: true})
	if code, _ := get(t, h, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("healthz = %d, want 503", code)
	}
	if _, body := get(t, h, "/"); body != "version=3\n" {
		t.Errorf("GET / = %q", body)
	}
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunCheck(t *testing.T) {
	good := writeConfig(t, "version = 1\nlisten = 127.0.0.1:0\n")
	var out, errb bytes.Buffer
	if code := run([]string{"-check", "-config", good}, &out, &errb); code != 0 || out.String() != "config ok\n" {
		t.Errorf("check good: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	bad := writeConfig(t, "version = 1\nlisten = 127.0.0.1:0\ninvalid = true\n")
	out.Reset()
	errb.Reset()
	code := run([]string{"-check", "-config", bad}, &out, &errb)
	if code != 1 || !strings.HasPrefix(errb.String(), bad+":3: invalid") {
		t.Errorf("check bad: exit %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"-check"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("no -config: exit %d, want 2", code)
	}
}

// TestServeGracefulShutdown cancels the context while a slow request is in
// flight: the request must still complete and serve must return nil.
func TestServeGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := &Config{Version: "1", Listen: "127.0.0.1:0"}
	addr := make(chan net.Addr, 1)
	started := make(chan struct{}, 1)
	h := hooks{
		onListen: func(a net.Addr) { addr <- a },
		wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				next.ServeHTTP(w, r)
			})
		},
	}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log.New(io.Discard, "", 0), h) }()
	url := "http://" + (<-addr).String()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/slow?ms=200")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-started
	cancel()
	r := <-got
	if r.err != nil || r.body != "version=1 slept=200ms\n" {
		t.Errorf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestServeExitAfter(t *testing.T) {
	cfg := &Config{Version: "1", Listen: "127.0.0.1:0", ExitAfter: 10 * time.Millisecond}
	err := serve(context.Background(), cfg, log.New(io.Discard, "", 0), hooks{})
	if !errors.Is(err, errExitAfter) {
		t.Errorf("serve = %v, want errExitAfter", err)
	}
}

// error_rate fails exactly that share of "/" requests, spread evenly, while
// /healthz stays healthy: a fault only real traffic reveals.
func TestHandlerErrorRate(t *testing.T) {
	h := newHandler(&Config{Version: "5", ErrorRate: 0.05})
	failed := 0
	for i := 0; i < 200; i++ {
		code, _ := get(t, h, "/")
		if code == http.StatusInternalServerError {
			failed++
		} else if code != 200 {
			t.Fatalf("GET / = %d", code)
		}
		if code, _ := get(t, h, "/healthz"); code != 200 {
			t.Fatalf("healthz = %d with error_rate set", code)
		}
	}
	if failed != 10 {
		t.Errorf("%d of 200 failed, want 10 (5%%)", failed)
	}
	if _, err := ParseConfig("app.conf", []byte("version = 1\nlisten = 127.0.0.1:1\nerror_rate = 1.5\n")); err == nil || !strings.Contains(err.Error(), "app.conf:3: error_rate") {
		t.Errorf("error_rate 1.5: %v", err)
	}
}

// -version prints the build stamped with -ldflags "-X main.build=N", and
// every answer names it in X-Demo-Build.
func TestBuildStamp(t *testing.T) {
	old := build
	build = "2"
	t.Cleanup(func() { build = old })
	var out, errb bytes.Buffer
	if code := run([]string{"-version"}, &out, &errb); code != 0 || out.String() != "demo-app build 2\n" {
		t.Errorf("-version: exit %d, %q %q", code, out.String(), errb.String())
	}
	h := newHandler(&Config{Version: "7"})
	for _, target := range []string{"/", "/healthz", "/nope"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if got := rec.Header().Get("X-Demo-Build"); got != "2" {
			t.Errorf("%s: X-Demo-Build %q", target, got)
		}
	}
}
