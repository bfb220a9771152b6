package rollout

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/rollout-sh/rollout/internal/shell"
)

// A part is one piece of a step's work on a host. The parts of a step run
// in one command (one round trip), in order, and stop at the first that
// fails; each part's output (stdout and stderr merged) and exit status come
// back on their own, so an error names the part that failed.
type part struct {
	script string // sh code of ours; user commands go in through userCommand
}

type partResult struct {
	ran    bool
	status int
	out    string
}

// userCommand runs an operator's command as its own shell program: a
// syntax error in it fails that part only.
func userCommand(cmd string) string {
	return "eval " + shell.Quote(cmd)
}

// runParts runs parts in one command: in order, stopping at the first that
// fails unless keepGoing, then finally (our cleanup, whatever happened; its
// failure is ignored). The error is the command's (the connection, not a
// part); parts that did not run have ran false.
func runParts(ctx context.Context, conn Conn, parts []part, keepGoing bool, finally string) ([]partResult, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	marker := "rollout-part-" + hex.EncodeToString(b[:])
	var sb strings.Builder
	sb.WriteString("n=" + marker + "; f=\n")
	for _, p := range parts {
		guard := `[ -z "$f" ] && `
		if keepGoing {
			guard = ""
		}
		sb.WriteString("if " + guard + ":; then (\n" + p.script + "\n) </dev/null 2>&1; s=$?; printf '\\n%s %d\\n' \"$n\" $s; [ $s -eq 0 ] || f=1; fi\n")
	}
	if finally != "" {
		sb.WriteString("(\n" + finally + "\n) </dev/null >/dev/null 2>&1\n")
	}
	sb.WriteString("exit 0")
	var out, errb bytes.Buffer
	if err := conn.Run(ctx, sb.String(), nil, &out, &errb); err != nil {
		return nil, fmt.Errorf("%w%s", err, tail(errb.String()))
	}
	res := make([]partResult, len(parts))
	rest := out.String()
	sep := "\n" + marker + " "
	for i := range parts {
		k := strings.Index(rest, sep)
		if k < 0 {
			break
		}
		line, after, _ := strings.Cut(rest[k+len(sep):], "\n")
		st, err := strconv.Atoi(line)
		if err != nil {
			return nil, fmt.Errorf("unreadable status %q of part %d", line, i+1)
		}
		res[i] = partResult{ran: true, status: st, out: rest[:k]}
		rest = after
	}
	return res, nil
}

// stageScript writes content to sp (next to dest; nothing live changes),
// checks its length, and gives it its mode and owner.
func stageScript(dest, sp string, content []byte, mode os.FileMode, owner string) string {
	var b strings.Builder
	b.WriteString("set -e\nd=" + shell.Quote(path.Dir(dest)) + "; t=" + shell.Quote(sp) + "\n")
	b.WriteString(`mkdir -p -- "$d"` + "\n")
	b.WriteString(`rm -f -- "$t"` + "\n")
	b.WriteString(`(umask 077; ` + shell.Printf(content) + ` >"$t")` + "\n")
	fmt.Fprintf(&b, `n=$(wc -c <"$t"); if [ $n -ne %d ]; then echo "short write: $n of %d bytes"; exit 1; fi`+"\n", len(content), len(content))
	fmt.Fprintf(&b, `chmod %s "$t"`+"\n", shell.OctalMode(mode))
	if owner != "" {
		fmt.Fprintf(&b, `chown %s "$t"`+"\n", shell.Quote(owner))
	}
	b.WriteString(`sync -- "$t" 2>/dev/null || sync`)
	return b.String()
}
