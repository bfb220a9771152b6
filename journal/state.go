package journal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/rollout-sh/rollout/internal/shell"
)

// Runner runs a shell command on a host. A non-zero exit returns an error
// implementing interface{ ExitStatus() int }. remote.Client and
// localrun.Runner satisfy it.
//
// Errors from the host functions of this package name the path on the
// host; callers add the host's name.
type Runner interface {
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
}

// DefaultStateDir is the state directory on hosts when the plan names none.
const DefaultStateDir = "/var/lib/rollout"

// StateFile is the name of the host state marker in <state_dir>/<plan>/.
const StateFile = "current.json"

// HostState is the marker <state_dir>/<plan>/current.json on a host: what
// rollout last deployed there. It is the truth status and stale-plan
// checks read.
type HostState struct {
	Plan             string `json:"plan"`
	Revision         string `json:"revision"`
	PreviousRevision string `json:"previous_revision,omitempty"`
	// Files maps each destination path to the sha256 (hex) of the content
	// deployed there.
	Files map[string]string `json:"files"`
	// VarsSHA256 is the hash of the host's groups and variables its files
	// were rendered with (inventory.Host.VarsDigest): with an inventory
	// no revision pins, it tells a change of variables since.
	VarsSHA256 string `json:"vars_sha256,omitempty"`
	// Artifacts maps each artifact block's name to the release it
	// deployed; the link <dest>/current is in Files too, with the hash of
	// its target (artifact.LinkHash), so a link moved by hand is drift.
	Artifacts map[string]ArtifactState `json:"artifacts,omitempty"`
	RunID     string                   `json:"run_id"`
	Time      time.Time                `json:"time"`
	Host      string                   `json:"host"`
	// DeployedBy is the operator of the run that wrote the marker
	// (--operator, ROLLOUT_OPERATOR, the CI's actor, else user@host);
	// empty in markers written before rollout recorded it
	DeployedBy string `json:"deployed_by,omitempty"`
	// RolledBackFrom is set when the run that wrote the marker (or
	// on_failure = "rollback") took the host back from a revision: apply
	// of that revision is refused without --retry, and status reports it
	// while the plan pins it.
	RolledBackFrom *RollbackMark `json:"rolled_back_from,omitempty"`
}

// ArtifactState is the release of one artifact deployed on a host.
type ArtifactState struct {
	ID     string `json:"id"`     // the release: <dest>/releases/<id>
	Source string `json:"source"` // the URL or controller path it came from
	SHA256 string `json:"sha256"`
	Dest   string `json:"dest"`
}

// RollbackMark says which revision a host was rolled back from, by whom,
// when, in which run and why.
type RollbackMark struct {
	Revision string    `json:"revision"`
	RunID    string    `json:"run_id"`
	By       string    `json:"by"`
	Reason   string    `json:"reason,omitempty"`
	Time     time.Time `json:"time"`
}

// PlanDir returns <stateDir>/<plan>, refusing a plan name that is not a
// single path element.
func PlanDir(stateDir, plan string) (string, error) {
	if stateDir == "" {
		return "", errors.New("empty state directory")
	}
	if plan == "" || plan == "." || plan == ".." || strings.ContainsAny(plan, "/\x00") {
		return "", fmt.Errorf("plan name %q cannot name a state directory", plan)
	}
	return path.Join(stateDir, plan), nil
}

// StatePath returns <stateDir>/<plan>/current.json.
func StatePath(stateDir, plan string) (string, error) {
	dir, err := PlanDir(stateDir, plan)
	if err != nil {
		return "", err
	}
	return path.Join(dir, StateFile), nil
}

// ReadState reads the host's state marker for plan. It returns (nil, nil)
// when there is none.
func ReadState(ctx context.Context, r Runner, stateDir, plan string) (*HostState, error) {
	p, err := StatePath(stateDir, plan)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	// "+" before the content tells a present empty file from no file.
	script := "f=" + shell.Quote(p) + `
if [ -e "$f" ] || [ -L "$f" ]; then printf +; exec cat -- "$f"; fi`
	out, err := run(ctx, r, script, nil)
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", p, err)
	}
	if out == "" {
		return nil, nil
	}
	var st HostState
	if err := json.Unmarshal([]byte(out[1:]), &st); err != nil {
		return nil, fmt.Errorf("read state %s: corrupt: %w", p, err)
	}
	return &st, nil
}

// WriteState replaces the host's state marker for plan atomically: the
// JSON goes to a temporary file in the same directory, is synced, and is
// renamed over current.json. The directory is created when missing.
func WriteState(ctx context.Context, r Runner, stateDir, plan string, st *HostState) error {
	return WriteStateThen(ctx, r, stateDir, plan, st, "")
}

// WriteStateThen is WriteState followed, in the same command, by the
// shell commands then (cleanup whose failure does not matter: its status
// is ignored) once the marker is in place.
func WriteStateThen(ctx context.Context, r Runner, stateDir, plan string, st *HostState, then string) error {
	p, err := StatePath(stateDir, plan)
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	c := *st
	c.Time = c.Time.UTC()
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return fmt.Errorf("write state %s: encode: %w", p, err)
	}
	b = append(b, '\n')
	script := replaceScript(p, b)
	if then != "" {
		script += "\n(\n" + then + "\n) >/dev/null 2>&1 || :"
	}
	if _, err := run(ctx, r, script, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("write state %s: %w", p, err)
	}
	return nil
}

// replaceScript returns a script that atomically replaces the file at p
// with content, read from stdin (mode 0600: it names revisions, files and
// runs), creating p's directory (0700; an existing one is tightened).
func replaceScript(p string, content []byte) string {
	dir := path.Dir(p)
	tmp := path.Join(dir, "."+path.Base(p)+".tmp."+token())
	return "set -e; umask 077\nd=" + shell.Quote(dir) + "; t=" + shell.Quote(tmp) + "; f=" + shell.Quote(p) + `
trap 'rm -f -- "$t"' EXIT
trap 'exit 1' HUP INT TERM
mkdir -p -- "$d"
chmod go-rwx -- "$d"
` + receive(`"$t"`, content) + `
sync -- "$t" 2>/dev/null || sync
mv -f -- "$t" "$f"
sync -- "$d" 2>/dev/null || true`
}

// hashFunc defines h, which prints the sha256 of its stdin (then " -").
const hashFunc = `h() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }
`

// receive returns script lines that create the file dst (a quoted sh
// word) from stdin and fail unless it holds exactly content, so that a
// transfer cut short never passes for the whole file.
func receive(dst string, content []byte) string {
	sum := sha256.Sum256(content)
	return hashFunc + `(set -C; cat > ` + dst + `)
s=$(h < ` + dst + `)
[ "${s%% *}" = ` + hex.EncodeToString(sum[:]) + ` ] || { printf '%s: short write\n' ` + dst + ` >&2; exit 1; }`
}

// FileHashes returns the sha256 (hex) of each file in paths, read on the
// host in one command. A missing file maps to ""; a path that exists but
// is not a regular file (or cannot be read) is an error.
func FileHashes(ctx context.Context, r Runner, paths []string) (map[string]string, error) {
	if len(paths) == 0 {
		return map[string]string{}, nil
	}
	script := hashScript(paths)
	out, err := run(ctx, r, script, nil)
	if err != nil {
		return nil, fmt.Errorf("hash files %s: %w", strings.Join(paths, ", "), err)
	}
	return parseHashes(paths, out)
}

// hashScript prints one line per path, in order: the file's sha256, or
// "-" for a missing file; a symlink to a directory (an artifact's
// current) gives the sha256 of the text of its target; any other path
// that is not a regular file fails it. Files
// are read on stdin so that no file name is ever parsed back.
func hashScript(paths []string) string {
	return hashFunc + `for f in ` + shell.Join(paths...) + `; do
  if [ -L "$f" ] && [ -d "$f" ]; then
    s=$(printf '%s' "$(readlink -- "$f")" | h) || exit 1
    printf '%s\n' "${s%% *}"
  elif [ -f "$f" ]; then
    s=$(h < "$f") || exit 1
    printf '%s\n' "${s%% *}"
  elif [ -e "$f" ] || [ -L "$f" ]; then
    printf '%s: not a regular file\n' "$f" >&2; exit 1
  else
    echo -
  fi
done`
}

// parseHashes reads one line per path: a sha256, or "-" for a missing file.
func parseHashes(paths []string, out string) (map[string]string, error) {
	if len(paths) == 0 {
		return map[string]string{}, nil
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(paths) {
		return nil, fmt.Errorf("hash files %s: got %d hashes for %d paths", strings.Join(paths, ", "), len(lines), len(paths))
	}
	m := make(map[string]string, len(paths))
	for i, p := range paths {
		h := lines[i]
		if h == "-" {
			h = ""
		} else if len(h) != 64 {
			return nil, fmt.Errorf("hash file %s: unexpected sha256 output %q", p, h)
		}
		m[p] = h
	}
	return m, nil
}

// run runs script with r and returns its stdout. A failure carries the
// command's stderr.
func run(ctx context.Context, r Runner, script string, stdin io.Reader) (string, error) {
	var out, errb bytes.Buffer
	err := r.Run(ctx, script, stdin, &out, &errb)
	if err != nil {
		if msg := strings.TrimSpace(errb.String()); msg != "" && !strings.Contains(err.Error(), msg) {
			return out.String(), fmt.Errorf("%w: %s", err, msg)
		}
		return out.String(), err
	}
	return out.String(), nil
}

// token returns a random name part, unique enough for temporary files.
func token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
