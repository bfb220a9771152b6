package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/internal/transport"
)

// The host session protocol. See docs/design.md, "One shell per host".
//
// A Client starts `exec /bin/sh -s` on the host (through `sudo -n sh -c`
// with become) once, and keeps it for the whole run. The shell reads its
// program from standard input: first a few definitions, then one line per
// command:
//
//	R 'NONCE' 'COMMAND' 'STDIN'
//
// R prints NONCE"S\n" on stdout and on stderr, runs COMMAND as
// `$SHELL -c COMMAND` in a child (its own session and process group when
// setsid exists; stdin from /dev/null, or from `printf STDIN`), then prints
// NONCE"E\n" on stderr and NONCE"E"STATUS"\n" on stdout. The nonce is 128
// random bits, new for every command, so the markers can sit anywhere in
// binary output without being mistaken for it; the client keeps only what
// lies between a command's start and end markers on each stream, so stray
// output (an MOTD, a background child of an earlier command) is dropped
// instead of being attributed. Output is streamed, never buffered on the
// host, so it may be any size.
//
// Commands run one at a time per shell; a Client opens up to maxShells
// shells for concurrent callers, lazily. Cancel: a second, short-lived exec
// session kills every descendant of the shell (and their process groups)
// with TERM, then KILL; OpenSSH ignores "signal" requests on root sessions,
// so nothing relies on them. A shell that ends, or a connection that drops,
// fails the command in flight with an error wrapping transport.ErrLost.

const (
	// maxShells bounds the shells of one Client: one serves a pipeline;
	// more only appear when callers overlap (a lock renewal during a long
	// restart, concurrent probes).
	maxShells = 4
	// maxInlineStdin is the largest stdin sent inside the command line;
	// larger input goes through a session of its own (streamed).
	maxInlineStdin = 1 << 20
	// killWait bounds how long a cancelled command may take to end before
	// its shell is abandoned (TERM, three seconds, KILL, on a busy host).
	killWait = 10 * time.Second
)

// Stats counts what a Client sent to its host.
type Stats struct {
	Sessions int64 // SSH sessions opened: shells and one-off execs (uploads, cancels)
	Commands int64 // commands run through a shell
}

// RoundTrips is Sessions + Commands: how many times the client waited on
// the host.
func (s Stats) RoundTrips() int64 { return s.Sessions + s.Commands }

// Stats returns the counts so far.
func (c *Client) Stats() Stats {
	return Stats{Sessions: c.nSessions.Load(), Commands: c.nCommands.Load()}
}

// hostShell is one long-lived remote shell.
type hostShell struct {
	c      *Client
	sess   *ssh.Session
	stdin  io.WriteCloser
	out    *demux
	errs   *demux
	hello  *job          // prints the shell's pid
	pidOut bytes.Buffer  // the hello's output, read after hello.done
	ended  chan struct{} // closed when the session has ended
	exit   error         // sess.Wait's result, set before ended is closed
	broken bool          // not to be reused
}

// bootstrap is the program the shell runs first. X is the shell commands
// run in: the login shell without become (as a plain exec would), sh with
// become (as `sudo -n sh -c` did).
func bootstrap(become bool) string {
	x := `X=${SHELL:-/bin/sh}`
	if become {
		x = `X=/bin/sh`
	}
	// The login shell that started this one has read its rc files and
	// exported what they set; bash run by sshd re-reads ~/.bashrc when
	// SHLVL says it is the first shell, which would cost every command what
	// a login costs. Say it is not.
	return x + `
case ${SHLVL:-0} in 0|-*) SHLVL=1 ;; esac; export SHLVL
S=; if setsid -w true >/dev/null 2>&1; then S='setsid -w'; fi
R() {
printf '%sS\n' "$1"; printf '%sS\n' "$1" >&2
if [ "$3" = - ]; then $S "$X" -c "$2" </dev/null; else printf "$3" | $S "$X" -c "$2"; fi
s=$?
printf '%sE\n' "$1" >&2; printf '%sE%s\n' "$1" "$s"
}
`
}

func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "rollout-" + hex.EncodeToString(b[:])
}

// acquireShell returns an idle shell, or starts one while fewer than
// maxShells exist, or waits for one.
func (c *Client) acquireShell(ctx context.Context, display string) (*hostShell, error) {
	for {
		select {
		case sh := <-c.idle:
			if sh.usable() {
				return sh, nil
			}
			c.dropShell(sh)
			continue
		default:
		}
		select {
		case c.slots <- struct{}{}:
			sh, err := c.startShell(ctx, display)
			if err != nil {
				<-c.slots
				return nil, err
			}
			return sh, nil
		case sh := <-c.idle:
			if sh.usable() {
				return sh, nil
			}
			c.dropShell(sh)
		case <-c.done:
			return nil, c.lostError("start shell", errors.New("connection closed"))
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: command %s not started: %w", c.name, abbreviate(display, 160), ctx.Err())
		}
	}
}

func (c *Client) releaseShell(sh *hostShell) {
	if !sh.usable() {
		c.dropShell(sh)
		return
	}
	c.idle <- sh // never blocks: at most maxShells exist
}

func (c *Client) dropShell(sh *hostShell) {
	sh.sess.Close()
	<-c.slots
}

func (sh *hostShell) usable() bool {
	if sh.broken {
		return false
	}
	select {
	case <-sh.ended:
		return false
	default:
		return true
	}
}

// startShell opens a session running the shell and sends its definitions.
// It does not wait for the shell: the first command's frame follows at
// once, so starting a shell costs no round trip of its own beyond the
// session.
func (c *Client) startShell(ctx context.Context, display string) (*hostShell, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: command %s not started: %w", c.name, abbreviate(display, 160), err)
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return nil, c.lostError("open session", err)
	}
	c.nSessions.Add(1)
	stdin, err1 := sess.StdinPipe()
	stdout, err2 := sess.StdoutPipe()
	stderr, err3 := sess.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		sess.Close()
		return nil, fmt.Errorf("ssh %s: shell pipes: %w", c.name, err)
	}
	if err := sess.Start(c.wrap("exec /bin/sh -s")); err != nil {
		sess.Close()
		return nil, c.lostError("start shell", err)
	}
	sh := &hostShell{c: c, sess: sess, stdin: stdin, ended: make(chan struct{}),
		out: &demux{}, errs: &demux{junk: &tailBuffer{max: 4 << 10}}}
	go sh.out.loop(stdout)
	go sh.errs.loop(stderr)
	go func() {
		sh.exit = sess.Wait()
		close(sh.ended)
	}()
	n := nonce()
	sh.hello = sh.enqueue(n, &sh.pidOut, io.Discard)
	hello := "printf '%sS\\n' " + n + " >&2; printf '%sE\\n' " + n + " >&2; printf '%sS\\n%s%sE0\\n' " + n + ` "$$" ` + n + "\n"
	if err := sh.send(ctx, bootstrap(c.cfg.Become)+hello); err != nil {
		sess.Close()
		return nil, err
	}
	return sh, nil
}

// pid returns the shell's process id on the host.
func (sh *hostShell) pid(wait time.Duration) (int, error) {
	select {
	case <-sh.hello.done:
	case <-time.After(wait):
		return 0, errors.New("the shell never said hello")
	}
	if sh.hello.err != nil {
		return 0, sh.hello.err
	}
	p, err := strconv.Atoi(strings.TrimSpace(sh.pidOut.String()))
	if err != nil || p <= 1 {
		return 0, fmt.Errorf("unexpected shell hello %q", sh.pidOut.String())
	}
	return p, nil
}

func (sh *hostShell) enqueue(n string, stdout, stderr io.Writer) *job {
	j := &job{done: make(chan struct{})}
	j.out = &streamJob{start: []byte(n + "S\n"), end: []byte(n + "E"), w: stdout, wantStatus: true, done: make(chan struct{})}
	j.errs = &streamJob{start: []byte(n + "S\n"), end: []byte(n + "E\n"), w: stderr, done: make(chan struct{})}
	sh.out.add(j.out)
	sh.errs.add(j.errs)
	go func() {
		<-j.out.done
		<-j.errs.done
		j.status = j.out.status
		j.err = errors.Join(j.out.err, j.errs.err)
		close(j.done)
	}()
	return j
}

// send writes to the shell's stdin; a write that cannot finish (a host that
// stopped reading) gives up with ctx.
func (sh *hostShell) send(ctx context.Context, text string) error {
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(sh.stdin, text)
		werr <- err
	}()
	select {
	case err := <-werr:
		if err != nil {
			sh.broken = true
			return sh.c.lostError("send command", fmt.Errorf("%w: %w", transport.ErrLost, err))
		}
		return nil
	case <-ctx.Done():
		sh.broken = true
		return ctx.Err()
	}
}

// run runs one command through the shell.
func (sh *hostShell) run(ctx context.Context, display, cmd string, stdin []byte, hasStdin bool, stdout, stderr io.Writer) error {
	c := sh.c
	tail := &tailBuffer{max: 8 << 10}
	var errw io.Writer = tail
	if stderr != nil {
		errw = io.MultiWriter(tail, stderr)
	}
	g := &gate{}
	in := "-"
	if hasStdin {
		in = shell.PrintfFormat(stdin)
	}
	n := nonce()
	j := sh.enqueue(n, g.writer(stdout), g.writer(errw))
	c.nCommands.Add(1)
	if err := sh.send(ctx, "R "+n+" "+shell.Quote(cmd)+" '"+in+"'\n"); err != nil {
		g.shut()
		if ctx.Err() != nil {
			return fmt.Errorf("%s: command %s interrupted: %w", c.name, abbreviate(display, 160), ctx.Err())
		}
		return err
	}
	select {
	case <-j.done:
		g.shut()
		if j.err != nil {
			return sh.lost(display, j.err)
		}
		if j.status == 0 {
			return nil
		}
		return c.failed(&ExitError{Host: c.name, Cmd: display, Status: j.status, Stderr: tail.String()})
	case <-ctx.Done():
		g.shut()
		sh.cancel(ctx, j)
		return fmt.Errorf("%s: command %s interrupted: %w", c.name, abbreviate(display, 160), ctx.Err())
	}
}

// lost explains a command whose shell ended before the command did.
func (sh *hostShell) lost(display string, err error) error {
	c := sh.c
	sh.broken = true
	var exit error
	select {
	case <-sh.ended:
		exit = sh.exit
	case <-time.After(time.Second):
	}
	what := fmt.Sprintf("run %s", abbreviate(display, 160))
	if !c.alive() {
		return c.lostError(what, err)
	}
	// The connection is up but the shell is gone: a shell that could not
	// start (sudo wanting a password) is the command's failure; a shell that
	// died under a command is a lost host session.
	junk := strings.TrimSpace(sh.errs.junkText())
	var ee *ssh.ExitError
	if errors.As(exit, &ee) && !sh.helloDone() {
		return c.failed(&ExitError{Host: c.name, Cmd: display, Status: ee.ExitStatus(), Signal: ee.Signal(), Stderr: junk})
	}
	why := "the remote shell ended"
	if ee != nil {
		why = fmt.Sprintf("the remote shell ended (status %d)", ee.ExitStatus())
	}
	if junk != "" {
		why += ": " + lastLines(junk, 2)
	}
	return fmt.Errorf("ssh %s: %s: %s: %w", c.name, what, why, transport.ErrLost)
}

func (sh *hostShell) helloDone() bool {
	select {
	case <-sh.hello.done:
		return sh.hello.err == nil
	default:
		return false
	}
}

// cancel stops the command in flight: a separate session kills every
// descendant of the shell, TERM first, KILL after about three seconds (time for a trap to remove its temporary file on a loaded host). The shell
// survives and reports the command's end; if it does not within killWait,
// the shell is abandoned.
func (sh *hostShell) cancel(ctx context.Context, j *job) {
	c := sh.c
	kctx, stop := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer stop()
	pid, err := sh.pid(killWait)
	if err == nil && c.alive() {
		err = c.run(kctx, "stop a cancelled command", c.wrap(killScript(pid)), nil, nil, nil)
	}
	if err == nil {
		select {
		case <-j.done:
			if j.err == nil {
				return
			}
		case <-kctx.Done():
		}
	}
	sh.broken = true
	sh.sess.Close()
}

// killScript kills every descendant of the process pid and every member of
// their process groups (a command started with setsid leads its own).
func killScript(pid int) string {
	return `P=` + strconv.Itoa(pid) + `
L() { ps -A -o pid= -o ppid= -o pgid= 2>/dev/null | awk -v r="$P" '{pp[$1]=$2; pg[$1]=$3} END {for (p in pp) {q=p; n=0; while ((q in pp) && q!=r && n<4096) {q=pp[q]; n++}; if (q==r && p!=r) d[p]=1}; for (p in pp) if ((p in d) || (pg[p] in d)) print p}'; }
k=$(L); [ -n "$k" ] || exit 0
kill -TERM $k 2>/dev/null
i=0
while [ $i -lt 15 ]; do
  sleep 0.2 2>/dev/null || sleep 1
  k=$(L); [ -n "$k" ] || exit 0
  i=$((i+1))
done
kill -KILL $k 2>/dev/null
k=$(L); [ -z "$k" ] || kill -KILL $k 2>/dev/null
exit 0`
}

// job is one command's two streams.
type job struct {
	out, errs *streamJob
	done      chan struct{}
	status    int
	err       error
}

// streamJob is one command's part of one stream.
type streamJob struct {
	start, end []byte
	w          io.Writer
	wantStatus bool // stdout: the status follows the end marker
	started    bool
	ended      bool
	status     int
	err        error
	done       chan struct{}
}

// demux splits one stream of the shell into its commands' parts.
type demux struct {
	mu    sync.Mutex
	queue []*streamJob
	dead  error
	junk  *tailBuffer // what arrived outside any command (stderr only)
}

func (d *demux) add(j *streamJob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead != nil {
		j.err = d.dead
		close(j.done)
		return
	}
	d.queue = append(d.queue, j)
}

func (d *demux) head() *streamJob {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queue) == 0 {
		return nil
	}
	return d.queue[0]
}

func (d *demux) pop() {
	d.mu.Lock()
	j := d.queue[0]
	d.queue = d.queue[1:]
	d.mu.Unlock()
	close(j.done)
}

func (d *demux) discard(p []byte) {
	if d.junk != nil {
		d.mu.Lock()
		_, _ = d.junk.Write(p)
		d.mu.Unlock()
	}
}

func (d *demux) junkText() string {
	if d.junk == nil {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.junk.String()
}

func (d *demux) loop(r io.Reader) {
	buf := make([]byte, 32<<10)
	var pending []byte
	for {
		n, err := r.Read(buf)
		pending = d.process(append(pending, buf[:n]...))
		if err != nil {
			d.discard(pending)
			if err == io.EOF {
				err = errors.New("end of stream")
			}
			d.mu.Lock()
			d.dead = fmt.Errorf("%w: %w", transport.ErrLost, err)
			q := d.queue
			d.queue = nil
			d.mu.Unlock()
			for _, j := range q {
				j.err = d.dead
				close(j.done)
			}
			return
		}
	}
}

// process consumes what it can of p and returns the rest (a possible
// partial marker, or an unfinished status line).
func (d *demux) process(p []byte) []byte {
	for {
		j := d.head()
		if j == nil {
			d.discard(p)
			return p[:0]
		}
		switch {
		case !j.started:
			i := bytes.Index(p, j.start)
			if i < 0 {
				keep := min(len(p), len(j.start)-1)
				d.discard(p[:len(p)-keep])
				return append(p[:0], p[len(p)-keep:]...)
			}
			d.discard(p[:i])
			p = p[i+len(j.start):]
			j.started = true
		case !j.ended:
			i := bytes.Index(p, j.end)
			if i < 0 {
				keep := min(len(p), len(j.end)-1)
				_, _ = j.w.Write(p[:len(p)-keep])
				return append(p[:0], p[len(p)-keep:]...)
			}
			_, _ = j.w.Write(p[:i])
			p = p[i+len(j.end):]
			j.ended = true
			if !j.wantStatus {
				d.pop()
			}
		default:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return p
			}
			st, err := strconv.Atoi(string(p[:i]))
			if err != nil {
				j.err = fmt.Errorf("unreadable exit status %q", p[:i])
			}
			j.status = st
			p = p[i+1:]
			d.pop()
		}
	}
}
