// Package journal keeps what rollout knows about past and running runs:
// the local journal (a view of the event stream, one JSON event per line),
// the state marker each host carries (current.json), and the per-plan
// locks on the hosts and on the controller.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/rollout-sh/rollout/rollout/event"
)

// Dir and File name the journal beside a plan: <plan dir>/.rollout/journal.jsonl.
const (
	Dir  = ".rollout"
	File = "journal.jsonl"
)

// PathFor returns the journal path for the plan file planPath.
func PathFor(planPath string) string {
	return filepath.Join(filepath.Dir(planPath), Dir, File)
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("journal closed")

// Journal appends events to a journal file. It is an event.Sink and is safe
// for concurrent use; several processes may append to the same file.
//
// Appends commit in groups: records appended while a write + fsync is in
// progress wait together and share the next one, so a fleet's pipelines
// pay one fsync per group, not one each. The rule the engine relies on is
// unchanged: Append returns only once its record is on disk (written and
// fsynced), so a step is never acted on before the event that records it
// is durable.
type Journal struct {
	path string

	mu       sync.Mutex
	flushed  *sync.Cond // a group's write + fsync ended
	f        *os.File
	err      error // first Emit error
	closed   bool
	next     *group // the records waiting for the next write
	flushing bool   // a write + fsync is in progress (outside mu)
	commits  int    // writes + fsyncs so far (for tests)

	warnings []string
}

// group is the records one write + fsync commits.
type group struct {
	buf  []byte
	done bool
	err  error
}

var _ event.Sink = (*Journal)(nil)

// Open opens the journal at path for appending, creating it and its
// directory when missing. A record torn by a crash during a write is
// repaired first so that the next record starts on a line of its own: an
// incomplete last line is cut off; a complete record that only lacks its
// newline gets one.
//
// The journal holds remote output and diagnostics, so its directory is
// 0700 and the file 0600; looser modes left by an older version are
// tightened, and Warnings says so.
func Open(path string) (*Journal, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	var warnings []string
	for _, p := range []struct {
		name string
		mode os.FileMode
	}{{dir, 0o700}, {path, 0o600}} {
		w, err := Tighten(p.name, p.mode)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open journal %s: %w", path, err)
		}
		if w != "" {
			warnings = append(warnings, w)
		}
	}
	if err := withFlock(f, func() error { return repairTail(f) }); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	j := &Journal{path: path, f: f, warnings: warnings}
	j.flushed = sync.NewCond(&j.mu)
	return j, nil
}

// Tighten removes the group and other permission bits of name when it has
// any beyond want's, and returns a warning saying what it changed ("" when
// nothing was).
func Tighten(name string, want os.FileMode) (string, error) {
	st, err := os.Stat(name)
	if err != nil {
		return "", err
	}
	have := st.Mode().Perm()
	if have&^want&0o077 == 0 {
		return "", nil
	}
	if err := os.Chmod(name, have&^0o077|want&0o077); err != nil {
		return "", fmt.Errorf("restrict %s to its owner: %w", name, err)
	}
	return fmt.Sprintf("%s was readable by other users (mode %04o); it holds run records and remote output, so it is now %04o",
		name, have, have&^0o077|want&0o077), nil
}

// Warnings lists what Open changed about the journal's permissions.
func (j *Journal) Warnings() []string { return j.warnings }

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// Append writes e as one JSON line with a single write and fsyncs the file.
func (j *Journal) Append(e event.Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal %s: encode %s event: %w", j.path, e.Event, err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return fmt.Errorf("journal %s: %w", j.path, ErrClosed)
	}
	if j.next == nil {
		j.next = &group{}
	}
	g := j.next
	g.buf = append(g.buf, b...)
	for !g.done {
		if j.flushing { // the group in flight is not ours: ours is next
			j.flushed.Wait()
			continue
		}
		// lead: commit every record waiting now, ours among them
		j.flushing = true
		lead := j.next
		j.next = nil
		j.mu.Unlock()
		err := j.commit(lead.buf)
		j.mu.Lock()
		lead.done, lead.err = true, err
		j.commits++
		j.flushing = false
		j.flushed.Broadcast()
	}
	if g.err != nil {
		return fmt.Errorf("journal %s: append %s event: %w", j.path, e.Event, g.err)
	}
	return nil
}

// commit writes a group's records with one write and fsyncs the file. The
// file lock keeps a repair in another process's Open from cutting a record
// in half; O_APPEND places the write at the end.
func (j *Journal) commit(buf []byte) error {
	return withFlock(j.f, func() error {
		if _, err := j.f.Write(buf); err != nil {
			return err
		}
		return j.f.Sync()
	})
}

// Emit appends e, remembering the first error for Err. It implements
// event.Sink, whose Emit cannot fail.
func (j *Journal) Emit(e event.Event) {
	if err := j.Append(e); err != nil {
		j.mu.Lock()
		if j.err == nil {
			j.err = err
		}
		j.mu.Unlock()
	}
}

// Err returns the first error Emit met, or nil.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Close closes the file. Later appends fail with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	for j.flushing || j.next != nil { // appends already taken are committed first
		if !j.flushing {
			lead := j.next
			j.next = nil
			lead.done, lead.err = true, j.commit(lead.buf)
			j.flushed.Broadcast()
			continue
		}
		j.flushed.Wait()
	}
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("close journal %s: %w", j.path, err)
	}
	return nil
}

// Read returns every event in the journal at path, in file order. A
// missing file is an empty journal (nil, nil). A last line without its
// newline that does not decode is a record torn by a crash and is skipped;
// a line that does not decode anywhere else is an error naming path:line.
// Blank lines are ignored.
func Read(path string) ([]event.Event, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	defer f.Close()
	var events []event.Event
	r := bufio.NewReader(f)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read journal %s:%d: %w", path, line, err)
		}
		last := errors.Is(err, io.EOF)
		if len(bytes.TrimSpace(b)) > 0 {
			var e event.Event
			if derr := json.Unmarshal(b, &e); derr != nil {
				if last {
					break // torn by a crash mid-write
				}
				return nil, fmt.Errorf("read journal %s:%d: corrupt record: %w", path, line, derr)
			}
			events = append(events, e)
		}
		if last {
			break
		}
	}
	return events, nil
}

// repairTail makes the file end with a newline: a last line that is a
// complete record gets its newline, anything else after the last newline
// is cut off.
func repairTail(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	// Find the start of the last line.
	const chunk = 64 << 10
	start := int64(0)
	buf := make([]byte, chunk)
	for end := size; end > 0; {
		off := max(end-chunk, 0)
		n, err := f.ReadAt(buf[:end-off], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if end == size && n > 0 && buf[n-1] == '\n' {
			return nil // already whole
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			start = off + int64(i) + 1
			break
		}
		end = off
	}
	tail := make([]byte, size-start)
	if _, err := f.ReadAt(tail, start); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var e event.Event
	if json.Unmarshal(tail, &e) == nil {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return err
		}
		return f.Sync()
	}
	if err := f.Truncate(start); err != nil {
		return err
	}
	return f.Sync()
}

func withFlock(f *os.File, fn func() error) error {
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("flock: %w", err)
		}
	}
	defer syscall.Flock(fd, syscall.LOCK_UN)
	return fn()
}
