package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Network namespaces: a host listed in Options.Netns runs its sshd and its
// app inside a network namespace of its own, reached from this machine's
// namespace through a veth pair, so that a test can cut its network
// (CutNetwork: the host's end of the pair goes down; packets to and from
// it are dropped silently, as on a pulled cable) and bring it back.
//
// Addresses come from 198.18.0.0/15, the range RFC 2544 reserves for
// benchmark test networks: never routed on a real network, and with
// ip_forward off nothing leaves this machine. Each host gets a /30: the
// machine's end is .1, the host's .2. While the link is down the route
// stays on the veth (marked linkdown), so packets for the host are
// dropped there, never sent to the default route.
//
// Needs root and iproute2 (`ip netns`, veth). Everything is removed by
// Stop: the namespace and the veth pair (deleting one end deletes both).

// IP is the iproute2 binary the fleet uses for namespaces.
const IP = "ip"

// netnsRange is where host addresses are taken from.
var netnsRange = netip.MustParsePrefix("198.18.0.0/15")

// netnsSeq numbers the namespaces this process creates.
var netnsSeq atomic.Int64

// netnsLock serialises address allocation between processes (tests of
// several packages, or several fleets, may start namespaces at once).
const netnsLock = "/tmp/rollout-fleet-netns.lock"

// NetnsAvailable says why host network namespaces cannot be made here, or
// nil when they can.
func NetnsAvailable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("fleet: network namespaces need root (running as uid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath(IP); err != nil {
		return fmt.Errorf("fleet: %w: iproute2 (%s)", ErrMissing, IP)
	}
	return nil
}

// Address is where the host is reached: its namespace's address, or
// 127.0.0.1.
func (h Host) Address() string {
	if h.Addr != "" {
		return h.Addr
	}
	return "127.0.0.1"
}

// ipCmd runs ip with args and returns an error carrying its output.
func ipCmd(args ...string) error {
	out, err := exec.Command(IP, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", IP, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setupNetns creates h's namespace and veth pair, with addresses, and
// sets h.Netns, h.Veth and h.Addr. On error what was made is removed.
func setupNetns(h *Host) (err error) {
	lock, err := os.OpenFile(netnsLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("netns %s: %w", h.Name, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("netns %s: lock %s: %w", h.Name, netnsLock, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	removeStaleNetns()
	sub, err := freeSubnet()
	if err != nil {
		return fmt.Errorf("netns %s: %w", h.Name, err)
	}
	n := netnsSeq.Add(1)
	pid := os.Getpid()
	ns := fmt.Sprintf("rollout-%d-%d", pid, n)
	veth := fmt.Sprintf("rf%dx%d", pid, n) // the machine's end; the host's ends in "p"
	if len(veth)+1 > 15 {
		return fmt.Errorf("netns %s: interface name %sp is too long", h.Name, veth)
	}
	local := sub.Addr().Next()
	remote := local.Next()
	bits := strconv.Itoa(sub.Bits())
	h.Netns, h.Veth = ns, veth
	defer func() {
		if err != nil {
			removeNetns(*h)
			h.Netns, h.Veth = "", ""
		}
	}()
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", veth + "p"},
		{"link", "set", veth + "p", "netns", ns},
		{"addr", "add", local.String() + "/" + bits, "dev", veth},
		{"link", "set", veth, "up"},
		{"-n", ns, "addr", "add", remote.String() + "/" + bits, "dev", veth + "p"},
		{"-n", ns, "link", "set", veth + "p", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return fmt.Errorf("netns %s: %w", h.Name, err)
		}
	}
	h.Addr = remote.String()
	return nil
}

// freeSubnet returns a /30 of netnsRange that no interface of this
// machine has an address in.
func freeSubnet() (netip.Prefix, error) {
	out, err := exec.Command(IP, "-4", "-o", "addr", "show").Output()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s -4 -o addr show: %w", IP, err)
	}
	var used []netip.Prefix
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil {
			used = append(used, p.Masked())
		}
	}
	for a := netnsRange.Addr(); netnsRange.Contains(a); {
		sub := netip.PrefixFrom(a, 30)
		free := true
		for _, u := range used {
			if u.Overlaps(sub) {
				free = false
				break
			}
		}
		if free {
			return sub, nil
		}
		for range 4 {
			a = a.Next()
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /30 left in %s", netnsRange)
}

// removeNetns deletes h's veth pair and namespace; a missing one is fine.
// Processes still inside the namespace keep it alive until they exit,
// without the veth.
func removeNetns(h Host) []error {
	var errs []error
	if h.Veth != "" {
		if err := ipCmd("link", "del", h.Veth); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	if h.Netns != "" {
		if _, err := os.Stat(filepath.Join("/run/netns", h.Netns)); err == nil {
			if err := ipCmd("netns", "del", h.Netns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// removeStaleNetns removes the namespaces (and veths) this code made in
// processes that are gone: a test binary killed by -timeout cannot run
// its cleanup. Only names of the form rollout-PID-N with PID not running
// are touched.
func removeStaleNetns() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "rollout-")
		if !ok {
			continue
		}
		ps, ns, ok := strings.Cut(rest, "-")
		pid, err1 := strconv.Atoi(ps)
		n, err2 := strconv.Atoi(ns)
		if !ok || err1 != nil || err2 != nil || pid == os.Getpid() || pidRunning(pid, "") {
			continue
		}
		_ = removeNetns(Host{Netns: e.Name(), Veth: fmt.Sprintf("rf%dx%d", pid, n)})
	}
}

// inNetns prefixes argv so that it runs in h's namespace (ip netns exec
// execs it: the pid is the program's own).
func (h Host) inNetns(argv []string) []string {
	if h.Netns == "" {
		return argv
	}
	return append([]string{IP, "netns", "exec", h.Netns}, argv...)
}

// CutNetwork takes host h's end of its veth pair down: from then on
// nothing reaches the host or leaves it (established connections stall,
// new ones time out), while its processes keep running. The host must run
// in a namespace (Options.Netns).
func (f *Fleet) CutNetwork(h Host) error {
	if h.Netns == "" {
		return fmt.Errorf("cut network of %s: the host has no network namespace (Options.Netns)", h.Name)
	}
	if err := ipCmd("-n", h.Netns, "link", "set", h.Veth+"p", "down"); err != nil {
		return fmt.Errorf("cut network of %s: %w", h.Name, err)
	}
	return nil
}

// RestoreNetwork brings host h's link back up after CutNetwork and waits
// until its sshd answers again.
func (f *Fleet) RestoreNetwork(ctx context.Context, h Host) error {
	if h.Netns == "" {
		return fmt.Errorf("restore network of %s: the host has no network namespace (Options.Netns)", h.Name)
	}
	if err := ipCmd("-n", h.Netns, "link", "set", h.Veth+"p", "up"); err != nil {
		return fmt.Errorf("restore network of %s: %w", h.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := poll(wctx, "sshd "+h.Name, nil, 50*time.Millisecond, func() error { return sshBanner(h.Address(), h.SSHPort) }); err != nil {
		return fmt.Errorf("restore network of %s: %w", h.Name, err)
	}
	return nil
}

// removeNamespaces removes every host's namespace and veth pair.
func (f *Fleet) removeNamespaces() error {
	var errs []error
	for _, h := range f.Hosts {
		errs = append(errs, removeNetns(h)...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove network namespaces: %w", err)
	}
	return nil
}
