package artifact

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Format is how a source is unpacked, from its name.
type Format string

const (
	FormatTarGz Format = "tar.gz"
	FormatTar   Format = "tar"
	FormatZip   Format = "zip"
)

// FormatOf is the archive format of a file named name (a URL or a path),
// or an error naming the formats known.
func FormatOf(name string) (Format, error) {
	if i := strings.IndexAny(name, "?#"); i >= 0 && strings.Contains(name, "://") {
		name = name[:i]
	}
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return FormatTarGz, nil
	case strings.HasSuffix(n, ".tar"):
		return FormatTar, nil
	case strings.HasSuffix(n, ".zip"):
		return FormatZip, nil
	}
	return "", fmt.Errorf("cannot unpack %s: unpack knows .tar.gz, .tgz, .tar and .zip", name)
}

// BaseName is the file name a source's bytes get in the release when it
// is not unpacked: the last element of its path.
func BaseName(source string) string {
	if i := strings.IndexAny(source, "?#"); i >= 0 && strings.Contains(source, "://") {
		source = source[:i]
	}
	b := path.Base(source)
	if b == "." || b == "/" || b == "" {
		return "artifact"
	}
	return b
}

// entry is one checked member of an archive.
type entry struct {
	name   string // clean, relative, slash-separated
	kind   byte   // tar.TypeDir, tar.TypeReg, tar.TypeSymlink
	mode   int64  // permission bits
	link   string // symlink target
	data   []byte
	opener func() (io.ReadCloser, error) // zip members are read when written
	size   int64
}

// Pack reads an archive of format f and returns it as a tar stream that
// holds only directories, regular files and symlinks whose every
// resolution stays inside the release, with permission bits only (no
// owners, no setuid): what a host may extract as it is. An entry named
// with "..", an absolute path, a hard link, a device or fifo, a link out
// of the release, a duplicate name, or more than lim allows is refused
// with ErrUnsafe, naming the entry.
func Pack(data []byte, f Format, lim Limits) ([]byte, error) {
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	var entries []*entry
	var err error
	switch f {
	case FormatTarGz:
		zr, zerr := gzip.NewReader(bytes.NewReader(data))
		if zerr != nil {
			return nil, fmt.Errorf("unpack: gzip: %w", zerr)
		}
		entries, err = readTar(zr, lim)
	case FormatTar:
		entries, err = readTar(bytes.NewReader(data), lim)
	case FormatZip:
		entries, err = readZip(data, lim)
	default:
		return nil, fmt.Errorf("unpack: unknown format %q", f)
	}
	if err != nil {
		return nil, err
	}
	if err := checkTree(entries); err != nil {
		return nil, err
	}
	return writeTar(entries)
}

// PackFile is a tar stream holding data as the one file name with mode:
// an artifact that is not unpacked.
func PackFile(name string, data []byte, mode fs.FileMode) ([]byte, error) {
	if name == "" || strings.Contains(name, "/") || name == "." || name == ".." {
		return nil, fmt.Errorf("%w: file name %q", ErrUnsafe, name)
	}
	return writeTar([]*entry{{name: name, kind: tar.TypeReg, mode: int64(mode.Perm()), data: data, size: int64(len(data))}})
}

func unsafef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsafe}, args...)...)
}

// cleanName checks an entry's name: relative, no "..", not empty.
func cleanName(raw string) (string, error) {
	n := strings.ReplaceAll(raw, "\\", "/")
	if strings.HasPrefix(n, "/") || (len(n) > 1 && n[1] == ':') {
		return "", unsafef("entry %q has an absolute path", raw)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", unsafef("entry %q leaves the release directory (..)", raw)
		}
	}
	if strings.ContainsRune(n, 0) {
		return "", unsafef("entry %q holds a NUL byte", raw)
	}
	c := path.Clean(n)
	if c == "." {
		return "", nil // the release dir itself
	}
	return c, nil
}

type budget struct {
	lim   Limits
	total int64
	count int
}

func (b *budget) add(name string, size int64) error {
	b.count++
	if b.count > b.lim.Entries {
		return unsafef("more than %d entries", b.lim.Entries)
	}
	if size < 0 {
		return unsafef("entry %q has a negative size", name)
	}
	b.total += size
	if b.total > b.lim.Unpacked {
		return unsafef("more than %d bytes unpacked (at %q)", b.lim.Unpacked, name)
	}
	return nil
}

func readTar(r io.Reader, lim Limits) ([]*entry, error) {
	tr := tar.NewReader(r)
	b := &budget{lim: lim}
	var out []*entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("unpack: tar: %w", err)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return nil, err
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeDir:
			if err := b.add(h.Name, 0); err != nil {
				return nil, err
			}
			if name != "" {
				out = append(out, &entry{name: name, kind: tar.TypeDir, mode: h.Mode & 0o777})
			}
		case tar.TypeReg: // the reader reports the old TypeRegA as TypeReg
			if name == "" {
				return nil, unsafef("entry %q is a file named like the release directory", h.Name)
			}
			if err := b.add(h.Name, h.Size); err != nil {
				return nil, err
			}
			data, err := io.ReadAll(io.LimitReader(tr, h.Size+1))
			if err != nil {
				return nil, fmt.Errorf("unpack: tar: %s: %w", h.Name, err)
			}
			if int64(len(data)) != h.Size {
				return nil, fmt.Errorf("unpack: tar: %s: truncated", h.Name)
			}
			out = append(out, &entry{name: name, kind: tar.TypeReg, mode: h.Mode & 0o777, data: data, size: h.Size})
		case tar.TypeSymlink:
			if err := b.add(h.Name, 0); err != nil {
				return nil, err
			}
			if name == "" {
				return nil, unsafef("entry %q is a link named like the release directory", h.Name)
			}
			out = append(out, &entry{name: name, kind: tar.TypeSymlink, mode: 0o777, link: h.Linkname})
		case tar.TypeLink:
			return nil, unsafef("entry %q is a hard link (to %q)", h.Name, h.Linkname)
		case tar.TypeChar, tar.TypeBlock:
			return nil, unsafef("entry %q is a device", h.Name)
		case tar.TypeFifo:
			return nil, unsafef("entry %q is a fifo", h.Name)
		default:
			return nil, unsafef("entry %q has tar type %q, which is not a file, directory or link", h.Name, h.Typeflag)
		}
	}
}

func readZip(data []byte, lim Limits) ([]*entry, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("unpack: zip: %w", err)
	}
	b := &budget{lim: lim}
	var out []*entry
	for _, f := range zr.File {
		name, err := cleanName(f.Name)
		if err != nil {
			return nil, err
		}
		m := f.Mode()
		switch {
		case m.IsDir():
			if err := b.add(f.Name, 0); err != nil {
				return nil, err
			}
			if name != "" {
				out = append(out, &entry{name: name, kind: tar.TypeDir, mode: int64(m.Perm() | 0o700)})
			}
		case m&fs.ModeSymlink != 0:
			if err := b.add(f.Name, 0); err != nil {
				return nil, err
			}
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("unpack: zip: %s: %w", f.Name, err)
			}
			target, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("unpack: zip: %s: %w", f.Name, err)
			}
			if name == "" {
				return nil, unsafef("entry %q is a link named like the release directory", f.Name)
			}
			out = append(out, &entry{name: name, kind: tar.TypeSymlink, mode: 0o777, link: string(target)})
		case m.IsRegular():
			if name == "" {
				return nil, unsafef("entry %q is a file named like the release directory", f.Name)
			}
			if f.UncompressedSize64 > uint64(lim.Unpacked) {
				return nil, unsafef("entry %q is larger than %d bytes", f.Name, lim.Unpacked)
			}
			size := int64(f.UncompressedSize64)
			if err := b.add(f.Name, size); err != nil {
				return nil, err
			}
			perm := m.Perm() &^ 0o022 // zip tools write 0666 freely
			if perm == 0 {
				perm = 0o644
			}
			out = append(out, &entry{name: name, kind: tar.TypeReg, mode: int64(perm), size: size, opener: f.Open})
		default:
			return nil, unsafef("entry %q is not a file, directory or link (%s)", f.Name, m.Type())
		}
	}
	return out, nil
}

// checkTree refuses duplicates, entries under a link, and links whose
// resolution, through the archive's own links, leaves the release.
func checkTree(entries []*entry) error {
	byName := map[string]*entry{}
	for _, e := range entries {
		if prev, dup := byName[e.name]; dup && !(prev.kind == tar.TypeDir && e.kind == tar.TypeDir) {
			return unsafef("entry %q appears twice", e.name)
		}
		byName[e.name] = e
	}
	for _, e := range entries {
		// nothing is written through a link: a parent that is a link
		for p := path.Dir(e.name); p != "."; p = path.Dir(p) {
			if pe := byName[p]; pe != nil && pe.kind != tar.TypeDir {
				return unsafef("entry %q lies under %q, which is not a directory", e.name, p)
			}
		}
		if e.kind != tar.TypeSymlink {
			continue
		}
		if e.link == "" || strings.HasPrefix(e.link, "/") || strings.ContainsRune(e.link, 0) {
			return unsafef("link %q points to %q, outside the release directory", e.name, e.link)
		}
		if _, err := resolve(byName, joinRaw(path.Dir(e.name), e.link), 0); err != nil {
			return unsafef("link %q points to %q, outside the release directory", e.name, e.link)
		}
	}
	return nil
}

// resolve follows p (relative to the release root) through the archive's
// links, component by component, and fails when it would leave the root.
func resolve(byName map[string]*entry, p string, depth int) (string, error) {
	if depth > 40 {
		return "", fmt.Errorf("too many links")
	}
	var cur []string
	parts := strings.Split(p, "/")
	for i, part := range parts {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return "", fmt.Errorf("leaves the root")
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, part)
		name := strings.Join(cur, "/")
		if e := byName[name]; e != nil && e.kind == tar.TypeSymlink {
			if strings.HasPrefix(e.link, "/") {
				return "", fmt.Errorf("absolute")
			}
			rest := strings.Join(parts[i+1:], "/")
			target, err := resolve(byName, joinRaw(path.Dir(name), e.link), depth+1)
			if err != nil {
				return "", err
			}
			return resolve(byName, joinRaw(target, rest), depth+1)
		}
	}
	return strings.Join(cur, "/"), nil
}

// joinRaw joins two relative paths without cleaning them: "r/.." must
// stay a step up from wherever the link r leads, not become ".".
func joinRaw(dir, rest string) string {
	switch {
	case dir == "" || dir == ".":
		return rest
	case rest == "":
		return dir
	}
	return dir + "/" + rest
}

// writeTar writes entries, directories first so that modes of parents
// are set, in name order.
func writeTar(entries []*entry) ([]byte, error) {
	sorted := append([]*entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	seenDir := map[string]bool{}
	for _, e := range sorted {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX}
		switch e.kind {
		case tar.TypeDir:
			if seenDir[e.name] {
				continue
			}
			seenDir[e.name] = true
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, e.name+"/", e.mode|0o700
		case tar.TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("unpack: %s: %w", e.name, err)
		}
		if e.kind != tar.TypeReg {
			continue
		}
		if e.opener == nil {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("unpack: %s: %w", e.name, err)
			}
			continue
		}
		rc, err := e.opener()
		if err != nil {
			return nil, fmt.Errorf("unpack: zip: %s: %w", e.name, err)
		}
		n, err := io.Copy(tw, io.LimitReader(rc, e.size+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("unpack: zip: %s: %w", e.name, err)
		}
		if n != e.size {
			return nil, fmt.Errorf("unpack: zip: %s: %d bytes, its header says %d", e.name, n, e.size)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
