// Package remote runs commands and places files on hosts over SSH.
//
// One Client holds one SSH connection to one host for the whole run, and on
// it one long-lived remote shell that runs the commands (session.go); only
// large uploads and cancels open sessions of their own. Host keys are always verified against a
// known_hosts file, authentication uses the ssh-agent and then identity files,
// and nothing ever prompts.
package remote

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Target says how to reach one host.
type Target struct {
	Name          string   // inventory name, used in errors
	Address       string   // host to connect to
	Port          int      // 0 = 22
	User          string   // "" = current user
	IdentityFiles []string // tried in order; when empty, ~/.ssh/id_ed25519, id_ecdsa, id_rsa that exist
	Jump          *Target  // ProxyJump: connect through this host first (may itself have Jump)
}

// Config holds the settings shared by every connection of a run.
type Config struct {
	KnownHostsFile    string        // "" = ~/.ssh/known_hosts
	AcceptNewHostKeys bool          // like StrictHostKeyChecking=accept-new: unknown keys are recorded, changed keys still refused
	ConnectTimeout    time.Duration // TCP connect + handshake; default 10s
	// KeepaliveInterval is how often an idle or busy connection is asked
	// for a sign of life (OpenSSH's ServerAliveInterval); default 5s.
	// KeepaliveCountMax unanswered requests in a row (ServerAliveCountMax;
	// default 3) close it as lost: a network cut is found in about
	// interval × count.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	Become            bool   // run every command through `sudo -n sh -c '...'`
	BecomeUser        string // with Become: `sudo -n -u USER` ("" = root, sudo's default)
	// HostKeyCallback is for tests only: when set it replaces known_hosts
	// verification entirely.
	HostKeyCallback ssh.HostKeyCallback
}

const (
	defaultConnectTimeout    = 10 * time.Second
	DefaultKeepaliveInterval = 5 * time.Second
	DefaultKeepaliveCountMax = 3
)

func (c Config) connectTimeout() time.Duration {
	if c.ConnectTimeout > 0 {
		return c.ConnectTimeout
	}
	return defaultConnectTimeout
}

func (c Config) keepaliveInterval() time.Duration {
	if c.KeepaliveInterval > 0 {
		return c.KeepaliveInterval
	}
	return DefaultKeepaliveInterval
}

func (c Config) keepaliveCountMax() int {
	if c.KeepaliveCountMax > 0 {
		return c.KeepaliveCountMax
	}
	return DefaultKeepaliveCountMax
}

// Sentinel errors; test with errors.Is.
var (
	// ErrHostKeyUnknown: the host has no entry in known_hosts.
	ErrHostKeyUnknown = errors.New("host key unknown")
	// ErrHostKeyChanged: the host presented a key different from the one
	// recorded in known_hosts (or a revoked key).
	ErrHostKeyChanged = errors.New("host key changed")
	// ErrAuth: the server accepted none of the offered keys, or no key was usable.
	ErrAuth = errors.New("ssh authentication failed")
	// ErrSudoPassword: become was requested but sudo wants a password.
	ErrSudoPassword = errors.New("sudo requires a password")
)

// ExitError reports a command that ran and exited with a non-zero status
// (or was killed by a signal).
type ExitError struct {
	Host   string // inventory name
	Cmd    string // the command as the caller passed it
	Status int    // exit status; 128+N when killed by signal N
	Signal string // signal name without "SIG" when killed by a signal, else ""
	Stderr string // the tail of the command's standard error
}

// ExitStatus returns the remote exit status.
func (e *ExitError) ExitStatus() int { return e.Status }

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: command %s ", e.Host, abbreviate(e.Cmd, 160))
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exited with status %d", e.Status)
	}
	if tail := lastLines(e.Stderr, 3); tail != "" {
		b.WriteString(": ")
		b.WriteString(tail)
	}
	return b.String()
}

// abbreviate quotes the first line of s, cut to at most n runes.
func abbreviate(s string, n int) string {
	first, _, multi := strings.Cut(strings.TrimSpace(s), "\n")
	r := []rune(first)
	if len(r) > n {
		r = append(r[:n], '…')
	} else if multi {
		r = append(r, '…')
	}
	return fmt.Sprintf("%q", string(r))
}

// lastLines returns the last n non-empty lines of s joined by " | ".
func lastLines(s string, n int) string {
	var out []string
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append(out, l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return strings.Join(out, " | ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
