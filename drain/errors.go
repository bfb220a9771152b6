package drain

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Cause is why a runtime API endpoint could not be reached.
type Cause int

// The causes a dial error is classified into.
const (
	CauseOther      Cause = iota
	CauseConnLimit        // EAGAIN: the socket is at its connection limit ("stats maxconn", 10 by default)
	CauseRefused          // ECONNREFUSED: nothing listens (HAProxy stopped or restarting)
	CauseMissing          // ENOENT: no socket at that path
	CausePermission       // EACCES/EPERM: not allowed to open the socket
	CauseTimeout          // no answer before the deadline
	// CauseSSHRejected: the SSH server of the via host refused to open the
	// socket. OpenSSH's sshd says only "open failed" for a stream-local
	// channel, whether the socket was full, missing or not listening, or
	// forwarding is disabled.
	CauseSSHRejected
	// CauseNoAnswer: connected, but not a byte came back before the
	// deadline. On a local socket that is HAProxy keeping the connection
	// in its accept backlog because its connection limit is reached.
	CauseNoAnswer
)

func (c Cause) String() string {
	switch c {
	case CauseConnLimit:
		return "connection limit"
	case CauseRefused:
		return "refused"
	case CauseMissing:
		return "no socket"
	case CausePermission:
		return "permission denied"
	case CauseTimeout:
		return "timeout"
	case CauseSSHRejected:
		return "rejected by sshd"
	case CauseNoAnswer:
		return "no answer"
	}
	return "unreachable"
}

// dialCause classifies a dial error, local (errno) or through SSH (the
// channel rejection carries the remote strerror text).
func dialCause(err error) Cause {
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, syscall.EAGAIN):
		return CauseConnLimit
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseRefused
	case errors.Is(err, syscall.ENOENT), errors.Is(err, os.ErrNotExist):
		return CauseMissing
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return CausePermission
	case errors.As(err, &ne) && ne.Timeout():
		return CauseTimeout
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "resource temporarily unavailable"):
		return CauseConnLimit
	case strings.Contains(msg, "connection refused"):
		return CauseRefused
	case strings.Contains(msg, "no such file or directory"):
		return CauseMissing
	case strings.Contains(msg, "permission denied"):
		return CausePermission
	case strings.Contains(msg, "ssh: rejected:") && strings.Contains(msg, "open failed"):
		return CauseSSHRejected
	}
	return CauseOther
}

// ConnectError is an endpoint that could not be reached, after Attempts
// tries over Since.
type ConnectError struct {
	Endpoint string // as in messages: "unix:/x" or "unix:/x (via lb1)"
	Cause    Cause
	Attempts int
	Since    time.Duration
	Err      error
}

func (e *ConnectError) Error() string {
	msg := fmt.Sprintf("haproxy %s: %v", e.Endpoint, e.Err)
	switch e.Cause {
	case CauseConnLimit:
		msg += " (the stats socket is at its connection limit)"
	case CauseNoAnswer:
		msg += " (connected, but HAProxy did not answer: the stats socket may be at its connection limit)"
	}
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (gave up after %d attempts in %s)", e.Attempts, e.Since.Round(time.Millisecond))
	}
	return msg
}

func (e *ConnectError) Unwrap() error { return e.Err }

// LevelError is a stats socket below admin level: it can read but not
// change server states.
type LevelError struct {
	Endpoint string
	Level    string
}

func (e *LevelError) Error() string {
	return fmt.Sprintf("haproxy %s: the stats socket has level %q, want admin (stats socket ... level admin)", e.Endpoint, e.Level)
}

// Hint returns what to do about a driver error, or "" when it is not one
// this package recognises: the plan's drain block is then the place to look.
// It looks at every error of an errors.Join; a socket that cannot be
// reached comes first, since nothing else can be judged before it is.
func Hint(err error) string {
	var ce *ConnectError
	if errors.As(err, &ce) {
		sock, probe := ce.Endpoint, probeCommand(ce.Endpoint)
		switch ce.Cause {
		case CauseNoAnswer:
			return "HAProxy accepted no command on " + sock + ": it queues connections beyond its limit (stats maxconn, 10 by default) without answering; find the clients holding it with `" + holders(sock) + "` and stop what is polling it, or raise the limit with `stats maxconn 50` in haproxy.cfg's global section and reload HAProxy; if nothing holds it, HAProxy is stuck"
		case CauseConnLimit:
			return "the HAProxy stats socket " + sock + " refused the connection: it is at its limit of concurrent connections (stats maxconn, 10 by default) and other clients hold them; find them with `" + holders(sock) + "` and stop what is polling it, or raise the limit with `stats maxconn 50` in haproxy.cfg's global section and reload HAProxy"
		case CauseRefused, CauseMissing, CauseTimeout, CauseOther:
			return "nothing answers at " + sock + ": check that HAProxy runs and that the endpoint matches its `stats socket` line, with: " + probe
		case CauseSSHRejected:
			return "the via host's sshd could not open " + sock + " and does not say why: the socket may be full (stats maxconn, 10 by default), missing or not listening, or stream-local forwarding is off (AllowStreamLocalForwarding); check with: " + probe
		case CausePermission:
			return "rollout may not open " + sock + ": run it as a user that can (the socket's owner, or via sudo), or set `user`/`group`/`mode` on the `stats socket` line in haproxy.cfg"
		}
	}
	var le *LevelError
	if errors.As(err, &le) {
		return "add `level admin` to the `stats socket` line of " + le.Endpoint + "'s haproxy.cfg and reload HAProxy"
	}
	var re *ReplyError
	if errors.As(err, &re) && strings.HasPrefix(re.Reply, "No such") {
		return "fix backend/server in the drain block: the names must match haproxy.cfg; list them with: " + probeCommand(re.Endpoint, "show servers state")
	}
	return ""
}

// probeCommand is a shell command that sends cmd to endpoint by hand.
func probeCommand(endpoint string, cmd ...string) string {
	c := "show info"
	if len(cmd) > 0 {
		c = cmd[0]
	}
	network, addr, via := splitEndpoint(endpoint)
	target := "unix-connect:" + addr
	if network == "tcp" {
		target = "tcp:" + addr
	}
	return onVia(via, "echo '"+c+"' | socat stdio "+target)
}

// holders is a shell command listing the connections to endpoint (run on
// the via host, if any).
func holders(endpoint string) string {
	network, addr, via := splitEndpoint(endpoint)
	cmd := "ss -xp | grep " + addr
	if network == "tcp" {
		cmd = "ss -tnp dst " + addr
	}
	return onVia(via, cmd)
}

// splitEndpoint takes apart an endpoint as messages name it:
// "unix:/path" or "tcp:host:port", with " (via HOST)" when it is reached
// through another host.
func splitEndpoint(endpoint string) (network, addr, via string) {
	ep, via, _ := strings.Cut(endpoint, " (via ")
	network, addr, _ = strings.Cut(ep, ":")
	return network, addr, strings.TrimSuffix(via, ")")
}

// onVia runs line on the via host over ssh, or here when via is "".
func onVia(via, line string) string {
	if via != "" {
		return "ssh " + via + " \"" + line + "\""
	}
	return line
}
