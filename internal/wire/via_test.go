package wire

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-sh/rollout/drain"
	"github.com/rollout-sh/rollout/internal/fleet"
	"github.com/rollout-sh/rollout/inventory"
)

// Through via (the socket opened by the via host's real OpenSSH sshd), a
// full stats socket is retried until it frees up; one that stays full is
// reported as the sshd's refusal with the hint that names what it may be.
func TestViaFullSocket(t *testing.T) {
	dir := t.TempDir()
	f := fleet.StartT(t, fleet.Options{Dir: filepath.Join(dir, "fleet"), Hosts: 1, HAProxy: 1})
	invPath := filepath.Join(dir, "inventory.ini")
	if err := f.WriteInventory(invPath); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(inv, Options{KnownHosts: f.KnownHosts, SSHConfig: filepath.Join(dir, "no-ssh-config")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sock := f.HAProxySockets[0]
	fill := func() []net.Conn {
		held, err := fleet.FillStatsSocket(sock)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	ctx := context.Background()
	api, err := w.RuntimeAPI(ctx, "web1", "unix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := w.RuntimeAPI(ctx, "web1", "unix:"+sock); again != api {
		t.Error("a second driver got another client for the same endpoint")
	}
	h, err := drain.NewHAProxyClients("web1", []*drain.RuntimeAPI{api}, "web", "web1")
	if err != nil {
		t.Fatal(err)
	}

	held := fill()
	release := time.AfterFunc(700*time.Millisecond, func() {
		for _, c := range held {
			c.Close()
		}
	})
	defer release.Stop()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.Check(cctx); err != nil {
		t.Fatalf("check through via once the socket frees up: %v", err)
	}
	if u := api.Usage(); u.Attempts < 2 {
		t.Errorf("usage %+v: the socket was full, want a retry", u)
	}

	// kept full: a fresh client (the kept connection would just work)
	api.Close()
	held = fill()
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	w2, err := New(inv, Options{KnownHosts: f.KnownHosts, SSHConfig: filepath.Join(dir, "no-ssh-config")})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	api2, err := w2.RuntimeAPI(ctx, "web1", "unix:"+sock)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := drain.NewHAProxyClients("web1", []*drain.RuntimeAPI{api2}, "web", "web1")
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	defer scancel()
	err = h2.Check(sctx)
	// OpenSSH's sshd refuses the channel ("open failed") when connecting
	// fails with EAGAIN; a connection that got into the accept backlog
	// instead is never answered
	var ce *drain.ConnectError
	if !errors.As(err, &ce) || ce.Cause != drain.CauseSSHRejected && ce.Cause != drain.CauseNoAnswer || !strings.Contains(err.Error(), "(via web1)") {
		t.Fatalf("err = %v, want the via host's sshd refusal or no answer", err)
	}
	h2int := Hint(err)
	if !strings.Contains(h2int, "stats maxconn") {
		t.Errorf("hint = %q", h2int)
	}
	if ce.Cause == drain.CauseSSHRejected && !strings.Contains(h2int, `ssh web1 "echo 'show info' | socat stdio unix-connect:`+sock+`"`) {
		t.Errorf("hint = %q, want the probe through ssh web1", h2int)
	}
	t.Logf("cause %v: %v", ce.Cause, err)
}
