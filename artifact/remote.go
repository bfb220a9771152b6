package artifact

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/rollout-sh/rollout/internal/cmdout"
	"github.com/rollout-sh/rollout/internal/shell"
	"github.com/rollout-sh/rollout/internal/transport"
	"github.com/rollout-sh/rollout/plan"
	"github.com/rollout-sh/rollout/rollout/event"
)

// Remote stages, switches and prunes releases on a host through its
// session. Its Fetcher is shared by every host of a run, so an artifact
// fetched by the controller is downloaded once.
type Remote struct {
	Fetcher *Fetcher

	mu      sync.Mutex
	streams map[string]*packed // the checked tar stream of each artifact, made once per run
}

type packed struct {
	once   sync.Once
	stream []byte
	err    error
}

// NewRemote is a Remote with a fresh Fetcher.
func NewRemote() *Remote { return &Remote{Fetcher: &Fetcher{}} }

func (r *Remote) fetcher() *Fetcher {
	if r.Fetcher == nil {
		r.Fetcher = &Fetcher{}
	}
	return r.Fetcher
}

// Missing reports, in one command, which of arts have no release on the
// host yet.
func (r *Remote) Missing(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec) ([]bool, error) {
	if len(arts) == 0 {
		return nil, nil
	}
	var b strings.Builder
	for _, a := range arts {
		fmt.Fprintf(&b, "if [ -d %s ]; then echo have; else echo missing; fi\n", shell.Quote(ReleaseDir(a)))
	}
	var out bytes.Buffer
	if err := conn.Run(ctx, b.String(), nil, &out, &out); err != nil {
		return nil, fmt.Errorf("looking for releases: %w%s", err, cmdout.Tail(out.String()))
	}
	lines := strings.Fields(out.String())
	if len(lines) != len(arts) {
		return nil, fmt.Errorf("looking for releases: unexpected output %q", out.String())
	}
	missing := make([]bool, len(arts))
	for i, l := range lines {
		missing[i] = l == "missing"
	}
	return missing, nil
}

// Stage makes sure every artifact's release is on the host: one that is
// there already is not fetched again (a way back needs no download); one
// that is not is fetched (by the controller or the host, as the artifact
// says), verified, unpacked into <id>.partial and renamed to <id>, so a
// release is never half there. Then each artifact's validate runs on its
// release directory; a release this call made that fails it is removed.
// Errors name the artifact and its source.
func (r *Remote) Stage(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec) error {
	missing, err := r.Missing(ctx, conn, arts)
	if err != nil {
		return err
	}
	for i, a := range arts {
		if missing[i] {
			if err := r.stageOne(ctx, conn, a); err != nil {
				return fmt.Errorf("artifact %q: %w", a.Name, err)
			}
		}
		if a.Validate == "" {
			continue
		}
		cmd := a.ValidateCommand(ReleaseDir(a))
		var out bytes.Buffer
		err := conn.Run(ctx, shell.Merged(cmd), nil, &out, &out)
		event.RemoteSinkOf(ctx)(event.PhaseValidate, "artifact "+a.Name, cmd, event.ExitStatus(err), out.String())
		if err != nil {
			if missing[i] {
				_ = conn.Run(ctx, "rm -rf -- "+shell.Quote(ReleaseDir(a)), nil, nil, nil)
			}
			return fmt.Errorf("artifact %q from %s (release %s): validator `%s`: %w%s", a.Name, a.Source, ID(a.SHA256), cmd, err, cmdout.Tail(out.String()))
		}
	}
	return nil
}

func (r *Remote) stageOne(ctx context.Context, conn transport.Runner, a plan.ArtifactSpec) error {
	var data []byte
	var err error
	if a.Fetch == plan.FetchHost {
		placed, got, err := r.hostFetch(ctx, conn, a)
		if err != nil || placed {
			return err
		}
		data = got
	} else if data, err = r.fetcher().Fetch(ctx, a); err != nil {
		return err
	}
	stream, err := r.stream(a, data)
	if err != nil {
		return fmt.Errorf("%s: %w", a.Source, err)
	}
	return upload(ctx, conn, a, stream)
}

// stream is releaseStream made once for every host staging the same
// artifact (same bytes, same unpacking and mode).
func (r *Remote) stream(a plan.ArtifactSpec, data []byte) ([]byte, error) {
	key := fmt.Sprintf("%s\x00%t\x00%o\x00%s", a.SHA256, a.Unpack, a.Mode, BaseName(a.Source))
	if a.Unpack {
		f, _ := FormatOf(a.Source)
		key += "\x00" + string(f)
	}
	r.mu.Lock()
	if r.streams == nil {
		r.streams = map[string]*packed{}
	}
	p, ok := r.streams[key]
	if !ok {
		p = &packed{}
		r.streams[key] = p
	}
	r.mu.Unlock()
	p.once.Do(func() { p.stream, p.err = releaseStream(a, data, r.fetcher().limits()) })
	return p.stream, p.err
}

// releaseStream is the tar stream of a release: the archive, checked and
// normalised, or the one file.
func releaseStream(a plan.ArtifactSpec, data []byte, lim Limits) ([]byte, error) {
	if !a.Unpack {
		return PackFile(BaseName(a.Source), data, a.Mode)
	}
	f, err := FormatOf(a.Source)
	if err != nil {
		return nil, err
	}
	return Pack(data, f, lim)
}

// vars are the shell variables every host-side script starts with.
func vars(a plan.ArtifactSpec) string {
	return "r=" + shell.Quote(Releases(a)) + "; id=" + shell.Quote(ID(a.SHA256)) + "; p=\"$r/$id.partial\"\n"
}

// finish is the end of a staging script: owner, time, and the rename
// that makes the release visible.
func finish(a plan.ArtifactSpec) string {
	s := ""
	if a.Owner != "" {
		s += "chown -R -- " + shell.Quote(a.Owner) + " \"$p\"\n"
	}
	return s + `touch -- "$p"
if [ -e "$r/$id" ]; then exit 0; fi
mv -- "$p" "$r/$id"
trap - EXIT
`
}

// upload extracts a checked tar stream into <id>.partial and renames it.
func upload(ctx context.Context, conn transport.Runner, a plan.ArtifactSpec, stream []byte) error {
	script := "set -e\numask 022\n" + vars(a) + `mkdir -p -- "$r"
rm -rf -- "$p"
trap 'rm -rf -- "$p"' EXIT
mkdir -- "$p"
tar -x -p -o -f - -C "$p"
` + finish(a)
	var out bytes.Buffer
	if err := conn.Run(ctx, script, bytes.NewReader(stream), &out, &out); err != nil {
		return fmt.Errorf("unpacking into %s.partial: %w%s", ReleaseDir(a), err, cmdout.Tail(out.String()))
	}
	return nil
}

var hostMismatch = regexp.MustCompile(`sha256 mismatch: expected ([0-9a-f]{64}), actual ([0-9a-f]*)`)

// hostFetch has the host download the artifact and check its sha256.
// A file that is not unpacked is placed as the release there (placed);
// an archive comes back to be checked and normalised like one the
// controller fetched (data), so that a hostile archive is refused the
// same way.
func (r *Remote) hostFetch(ctx context.Context, conn transport.Runner, a plan.ArtifactSpec) (placed bool, data []byte, err error) {
	lim := r.fetcher().limits().Download
	u := shell.Quote(a.Source)
	script := "set -e\numask 022\n" + vars(a) + `f="$r/$id.download"
mkdir -p -- "$r"
trap 'rm -rf -- "$f" "$p"' EXIT
if command -v curl >/dev/null 2>&1; then
  curl -fsSL --max-filesize ` + fmt.Sprint(lim) + ` -o "$f" ` + u + ` >&2
elif command -v wget >/dev/null 2>&1; then
  wget -q -O "$f" ` + u + ` >&2
else
  echo "neither curl nor wget on the host" >&2; exit 127
fi
if command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum < "$f"); else s=$(shasum -a 256 < "$f"); fi; s=${s%% *}
if [ "$s" != ` + a.SHA256 + ` ]; then echo "sha256 mismatch: expected ` + a.SHA256 + `, actual $s" >&2; exit 65; fi
`
	if a.Unpack {
		script += `cat -- "$f"` + "\n"
	} else {
		script += `rm -rf -- "$p"
mkdir -- "$p"
mv -- "$f" "$p"/` + shell.Quote(BaseName(a.Source)) + `
chmod ` + fmt.Sprintf("%o", a.Mode.Perm()) + ` "$p"/` + shell.Quote(BaseName(a.Source)) + "\n" + finish(a)
	}
	var out, errOut bytes.Buffer
	if err := conn.Run(ctx, script, nil, &out, &errOut); err != nil {
		if m := hostMismatch.FindStringSubmatch(errOut.String()); m != nil {
			return false, nil, fmt.Errorf("downloaded on the host: %w", &ChecksumError{Source: a.Source, Expected: m[1], Actual: m[2]})
		}
		return false, nil, fmt.Errorf("download %s on the host: %w%s", a.Source, err, cmdout.Tail(errOut.String()))
	}
	if !a.Unpack {
		return true, nil, nil
	}
	data = out.Bytes()
	if got := Sum(data); got != a.SHA256 {
		return false, nil, &ChecksumError{Source: a.Source, Expected: a.SHA256, Actual: got}
	}
	return false, data, nil
}

// Switch points every artifact's current at its release, each with a new
// symlink renamed over the old one (rename(2): a reader sees the old
// release or the new, never neither), in one command. It returns what each
// current pointed at before ("" = there was none), for Restore; on an
// error, those it switched.
func (r *Remote) Switch(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec) (map[string]string, error) {
	targets := make([]string, len(arts))
	for i, a := range arts {
		targets[i] = LinkTarget(a.SHA256)
	}
	return switchTo(ctx, conn, arts, targets)
}

// Restore points every artifact named in prev back where prev says (a
// map from Switch), or removes current where it was "" (there was none).
func (r *Remote) Restore(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec, prev map[string]string) error {
	var sel []plan.ArtifactSpec
	var targets []string
	for _, a := range arts {
		if t, ok := prev[a.Name]; ok {
			sel = append(sel, a)
			targets = append(targets, t)
		}
	}
	_, err := switchTo(ctx, conn, sel, targets)
	return err
}

const prevMark = "rollout-prev "

func switchTo(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec, targets []string) (map[string]string, error) {
	prev := map[string]string{}
	if len(arts) == 0 {
		return prev, nil
	}
	var b strings.Builder
	b.WriteString("set -e\n")
	for i, a := range arts {
		c, n := shell.Quote(Current(a)), shell.Quote(a.Dest+"/.current.rollout-new")
		fmt.Fprintf(&b, "o=$(readlink -- %s 2>/dev/null || true)\n", c)
		if targets[i] == "" {
			fmt.Fprintf(&b, "rm -f -- %s\n", c)
		} else {
			t := shell.Quote(targets[i])
			fmt.Fprintf(&b, "[ -d %s/%s ] || { echo \"release %s is not on the host\" >&2; exit 66; }\n", shell.Quote(a.Dest), t, targets[i])
			fmt.Fprintf(&b, "ln -sfn -- %s %s\nmv -Tf -- %s %s\ntouch -- %s/%s\n", t, n, n, c, shell.Quote(a.Dest), t)
		}
		fmt.Fprintf(&b, "printf '%s%%s %%s\\n' %s \"$o\"\n", prevMark, shell.Quote(a.Name))
	}
	var out bytes.Buffer
	err := conn.Run(ctx, b.String(), nil, &out, &out)
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, prevMark); ok {
			name, target, _ := strings.Cut(rest, " ")
			prev[name] = target
		}
	}
	if err != nil {
		return prev, fmt.Errorf("switching current: %w%s", err, cmdout.Tail(strings.ReplaceAll(out.String(), prevMark, "")))
	}
	return prev, nil
}

// Prune removes the oldest releases of each artifact beyond its keep —
// the least recently staged or switched to first — never the one current
// points at, nor the ids in protect (the previous release), in two
// commands at most.
func (r *Remote) Prune(ctx context.Context, conn transport.Runner, arts []plan.ArtifactSpec, protect map[string][]string) ([]string, error) {
	if len(arts) == 0 {
		return nil, nil
	}
	var b strings.Builder
	for _, a := range arts {
		fmt.Fprintf(&b, "echo =; readlink -- %s || echo; ls -1t -- %s 2>/dev/null || true\n", shell.Quote(Current(a)), shell.Quote(Releases(a)))
	}
	var out bytes.Buffer
	if err := conn.Run(ctx, b.String(), nil, &out, &out); err != nil {
		return nil, fmt.Errorf("listing releases: %w%s", err, cmdout.Tail(out.String()))
	}
	blocks := strings.Split(out.String(), "=\n")
	if len(blocks) != len(arts)+1 {
		return nil, fmt.Errorf("listing releases: unexpected output %q", cmdout.Tail(out.String()))
	}
	var gone []string
	for i, a := range arts {
		lines := strings.Split(strings.TrimSuffix(blocks[i+1], "\n"), "\n")
		cur := strings.TrimPrefix(lines[0], "releases/")
		for _, id := range ToPrune(lines[1:], a.Keep, cur, protect[a.Name]...) {
			gone = append(gone, Releases(a)+"/"+id)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	sort.Strings(gone)
	var o bytes.Buffer
	if err := conn.Run(ctx, "rm -rf -- "+shell.Join(gone...), nil, &o, &o); err != nil {
		return nil, fmt.Errorf("pruning releases: %w%s", err, cmdout.Tail(o.String()))
	}
	return gone, nil
}

// ToPrune picks, from release ids newest first, those beyond keep; the
// current and protected ids always stay, and count towards keep.
// Partial or downloading leftovers are not releases and are left to the
// staging that owns them.
func ToPrune(newestFirst []string, keep int, current string, protect ...string) []string {
	if keep < 2 {
		keep = 2
	}
	stay := map[string]bool{current: true}
	for _, p := range protect {
		stay[p] = true
	}
	kept := 0
	for _, id := range newestFirst {
		if stay[id] && id != "" {
			kept++
		}
	}
	var out []string
	for _, id := range newestFirst {
		if id == "" || strings.HasSuffix(id, ".partial") || strings.HasSuffix(id, ".download") || strings.HasPrefix(id, ".") || stay[id] {
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		out = append(out, id)
	}
	return out
}
