// Command demo-app is the small HTTP service the rollout demo and the
// end-to-end tests upgrade.
//
//	demo-app -config FILE          serve
//	demo-app -check -config FILE   validate FILE like `nginx -t`
//	demo-app -version              print the build and exit
//
// The config is `key = value` lines (see config.go). GET / answers
// "version=V MESSAGE", GET /healthz "ok" (503 with fail_healthz = true),
// GET /slow?ms=N sleeps first; every answer carries the header
// X-Demo-Build. SIGTERM or SIGINT shut it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownGrace bounds how long in-flight requests may run after SIGTERM.
const shutdownGrace = 10 * time.Second

// build names this binary's build; the demo stamps two builds with
// -ldflags "-X main.build=N" to deploy one as an upgrade of the other.
var build = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config `file` (required)")
	check := fs.Bool("check", false, "validate the config and exit")
	version := fs.Bool("version", false, "print the build and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version && *path == "" && fs.NArg() == 0 {
		fmt.Fprintf(stdout, "demo-app build %s\n", build)
		return 0
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: demo-app [-check] -config FILE")
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *check {
		fmt.Fprintln(stdout, "config ok")
		return 0
	}
	logger := log.New(stderr, "demo-app: ", log.LstdFlags)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, logger, hooks{}); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

// errExitAfter is returned when exit_after elapses (a deliberate crash).
var errExitAfter = errors.New("exit_after elapsed: exiting with failure")

// hooks let tests observe a running server.
type hooks struct {
	onListen func(net.Addr)                  // told the bound address
	wrap     func(http.Handler) http.Handler // wraps the handler
}

// serve runs until ctx ends (graceful shutdown, nil) or exit_after elapses
// (errExitAfter).
func serve(ctx context.Context, cfg *Config, logger *log.Logger, h hooks) error {
	if cfg.StartDelay > 0 {
		logger.Printf("start_delay %s", cfg.StartDelay)
		select {
		case <-time.After(cfg.StartDelay):
		case <-ctx.Done():
			return nil
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	handler := newHandler(cfg)
	if h.wrap != nil {
		handler = h.wrap(handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Printf("build %s, version %s listening on %s (pid %d)", build, cfg.Version, ln.Addr(), os.Getpid())
	if h.onListen != nil {
		h.onListen(ln.Addr())
	}

	var crash <-chan time.Time
	if cfg.ExitAfter > 0 {
		crash = time.After(cfg.ExitAfter)
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-crash:
		srv.Close()
		return errExitAfter
	case <-ctx.Done():
	}
	logger.Print("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Print("stopped")
	return nil
}
