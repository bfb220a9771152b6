package fleet

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNetnsHostCutAndRestore starts a fleet with one host in a network
// namespace of its own: it is reached at its own address (ssh with strict
// host key checking, HAProxy's check of its app), CutNetwork makes it
// unreachable while its processes keep running, RestoreNetwork brings it
// back, and Stop removes the namespace and the veth pair.
func TestNetnsHostCutAndRestore(t *testing.T) {
	app, restart := DemoPaths(t)
	f := StartT(t, Options{Hosts: 2, HAProxy: 1, AppBinary: app, RestartScript: restart, Netns: []string{"web2"}})
	h := f.Hosts[1]
	if h.Netns == "" || h.Address() == "127.0.0.1" || !netnsRange.Contains(mustAddr(t, h.Address())) {
		t.Fatalf("web2 is not in a namespace of its own: %+v", h)
	}
	if f.Hosts[0].Netns != "" || f.Hosts[0].Address() != "127.0.0.1" {
		t.Fatalf("web1 should stay on loopback: %+v", f.Hosts[0])
	}
	ssh := func() error { return f.SSHCommand(h, "true").Run() }
	if out, err := f.SSHCommand(h, "ip -o -4 addr show").CombinedOutput(); err != nil || !strings.Contains(string(out), h.Address()+"/30") {
		t.Fatalf("ssh into web2's namespace: %v\n%s", err, out)
	}
	if st, err := f.ServerStatus(0); err != nil || st["web2"] != "UP" {
		t.Fatalf("HAProxy does not see web2's app UP at %s: %v %v", h.Address(), st, err)
	}

	if err := f.CutNetwork(h); err != nil {
		t.Fatal(err)
	}
	if err := sshBanner(h.Address(), h.SSHPort); err == nil {
		t.Fatal("web2's sshd still answers with its network cut")
	}
	if p, _ := f.process("sshd " + h.Name); !p.Running() {
		t.Fatal("cutting the network stopped web2's sshd")
	}
	if err := ssh(); err != nil {
		t.Logf("ssh with the network cut fails, as it must: %v", err)
	} else {
		t.Fatal("ssh to web2 succeeded with its network cut")
	}
	if err := f.RestoreNetwork(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if out, err := f.SSHCommand(h, "true").CombinedOutput(); err != nil {
		t.Fatalf("ssh after RestoreNetwork: %v\n%s", err, out)
	}

	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", h.Netns)); err == nil {
		t.Errorf("namespace %s is left after Stop", h.Netns)
	}
	deadline := time.Now().Add(5 * time.Second)
	for exec.Command(IP, "link", "show", h.Veth).Run() == nil {
		if time.Now().After(deadline) {
			t.Errorf("veth %s is left after Stop", h.Veth)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDelayCommands: a Delayable host's commands wait the delay (counted
// in delayed.log), and only while a delay is set.
func TestDelayCommands(t *testing.T) {
	f := StartT(t, Options{Hosts: 2, Delayable: []string{"web1"}})
	slow, fast := f.Hosts[0], f.Hosts[1]
	if err := f.DelayCommands(fast, time.Second); err == nil {
		t.Error("DelayCommands accepted a host that is not Delayable")
	}
	// ssh runs the login shell, not $SHELL: run a command through $SHELL -c
	// as rollout does
	viaShell := func(h Host) {
		t.Helper()
		if out, err := f.SSHCommand(h, `"$SHELL" -c true`).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", h.Name, err, out)
		}
	}
	viaShell(slow)
	if n := f.DelayedCommands(slow); n != 0 {
		t.Fatalf("%d commands delayed before any delay was set", n)
	}
	if err := f.DelayCommands(slow, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	viaShell(slow)
	viaShell(fast)
	if n := f.DelayedCommands(slow); n != 1 {
		t.Errorf("%d commands of web1 delayed, want 1", n)
	}
	if n := f.DelayedCommands(fast); n != 0 {
		t.Errorf("%d commands of web2 delayed, want 0", n)
	}
	if err := f.DelayCommands(slow, 0); err != nil {
		t.Fatal(err)
	}
	viaShell(slow)
	if n := f.DelayedCommands(slow); n != 1 {
		t.Errorf("a command was delayed after the delay was removed (%d)", n)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
