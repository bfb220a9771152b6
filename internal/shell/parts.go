package shell

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/rollout-sh/rollout/internal/cmdout"
	"github.com/rollout-sh/rollout/internal/transport"
)

// PartResult is how one part of RunParts ended.
type PartResult struct {
	Ran    bool   // false: an earlier part failed (or the output was cut)
	Status int    // the part's exit status
	Out    string // its stdout and stderr, merged
}

// RunParts runs parts, each a piece of sh code of ours, in one command (one
// round trip): in order, stopping at the first that fails unless
// keepGoing, then finally (our cleanup, whatever happened; its failure is
// ignored). Each part's output and exit status come back on their own, so
// an error can name the part that failed. The error is the command's (the
// connection, not a part); parts that did not run have Ran false.
func RunParts(ctx context.Context, conn transport.Runner, parts []string, keepGoing bool, finally string) ([]PartResult, error) {
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
		sb.WriteString("if " + guard + ":; then (\n" + p + "\n) </dev/null 2>&1; s=$?; printf '\\n%s %d\\n' \"$n\" $s; [ $s -eq 0 ] || f=1; fi\n")
	}
	if finally != "" {
		sb.WriteString("(\n" + finally + "\n) </dev/null >/dev/null 2>&1\n")
	}
	sb.WriteString("exit 0")
	var out, errb bytes.Buffer
	if err := conn.Run(ctx, sb.String(), nil, &out, &errb); err != nil {
		return nil, fmt.Errorf("%w%s", err, cmdout.Tail(errb.String()))
	}
	res := make([]PartResult, len(parts))
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
		res[i] = PartResult{Ran: true, Status: st, Out: rest[:k]}
		rest = after
	}
	return res, nil
}
