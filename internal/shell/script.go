package shell

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// WriteFileScript is the sh program that places the size bytes it reads on
// stdin at path, atomically: a temporary file in the same directory,
// checked for length, given mode (and owner, "user" or "user:group", when
// not ""), synced, and renamed over path. An interruption at any point
// leaves path as it was and removes the temporary file. The SSH client and
// the local runner both write files with it.
func WriteFileScript(path string, size int64, mode os.FileMode, owner string) string {
	p := Quote(path)
	var b strings.Builder
	b.WriteString("set -e; ")
	fmt.Fprintf(&b, "d=$(dirname %s); ", p)
	b.WriteString(`t=$(mktemp "$d/.rollout.XXXXXX"); `)
	b.WriteString(`trap 'rm -f "$t"' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; `)
	b.WriteString(`cat >"$t"; `)
	// A stream cut short must never go live: check the length first.
	fmt.Fprintf(&b, `n=$(wc -c <"$t"); if [ $n -ne %d ]; then echo "short upload: got $n of %d bytes" >&2; exit 1; fi; `, size, size)
	fmt.Fprintf(&b, `chmod %s "$t"; `, OctalMode(mode))
	if owner != "" {
		fmt.Fprintf(&b, `chown %s "$t"; `, Quote(owner))
	}
	b.WriteString(`sync "$t" 2>/dev/null || sync; `)
	fmt.Fprintf(&b, `mv -f "$t" %s; `, p)
	b.WriteString("trap - EXIT")
	return b.String()
}

// OctalMode renders mode for chmod, including setuid, setgid and sticky.
func OctalMode(m os.FileMode) string {
	v := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return "0" + strconv.FormatUint(uint64(v), 8)
}

// Sudo is the command line that runs a quoted sh program as user ("" =
// root) through sudo, never prompting for a password: Sudo(u) + Quote(cmd).
func Sudo(user string) string {
	if user == "" || user == "root" {
		return "sudo -n sh -c "
	}
	return "sudo -n -u " + Quote(user) + " sh -c "
}

// Merged runs cmd with its stderr sent into its stdout by the shell, so
// the two arrive as one stream in the order they were written (over SSH
// they otherwise travel on two channels and interleave at random).
func Merged(cmd string) string {
	return "{ " + cmd + "\n} 2>&1"
}
