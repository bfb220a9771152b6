// Command artifact-server serves the demo's builds over HTTP on loopback
// and logs every request, so the demo can show what an upgrade downloads
// and that a rollback downloads nothing.
//
//	artifact-server -dir DIR -log FILE -addr-file FILE [-addr 127.0.0.1:0]
//
// It serves the files of DIR, appends one line per request to the log
// (time, method, path, status), writes its URL (http://127.0.0.1:PORT)
// to the addr file once it listens, and stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "serve the files of this `directory` (required)")
	logPath := flag.String("log", "", "append one line per request to this `file` (required)")
	addrFile := flag.String("addr-file", "", "write the server's URL to this `file` once it listens (required)")
	addr := flag.String("addr", "127.0.0.1:0", "listen `address`")
	flag.Parse()
	if *dir == "" || *logPath == "" || *addrFile == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: artifact-server -dir DIR -log FILE -addr-file FILE [-addr 127.0.0.1:0]")
		os.Exit(2)
	}
	if err := run(*dir, *logPath, *addrFile, *addr); err != nil {
		log.Fatal("artifact-server: ", err)
	}
}

// status records the status code a handler answered.
type status struct {
	http.ResponseWriter
	code int
}

func (s *status) WriteHeader(code int) { s.code = code; s.ResponseWriter.WriteHeader(code) }

func run(dir, logPath, addrFile, addr string) error {
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	reqs := log.New(lf, "", 0)
	files := http.FileServer(http.Dir(dir))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &status{ResponseWriter: w, code: http.StatusOK}
		files.ServeHTTP(sw, r)
		reqs.Printf("%s %s %s %d", time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.Path, sw.code)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	if err := os.WriteFile(addrFile+".tmp", []byte(url+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(addrFile+".tmp", addrFile); err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("artifact-server: serving %s on %s (pid %d)", dir, url, os.Getpid())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
