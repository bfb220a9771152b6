package artifact

import (
	"archive/tar"
	"bytes"
	"io"
	"path"
	"strings"
	"testing"
)

// FuzzPack: whatever an archive holds, Pack either refuses it or returns
// a stream of directories, regular files and links whose names stay in
// the release and whose links resolve inside it, within the limits.
func FuzzPack(f *testing.F) {
	f.Add(mkTar(f, false, tentry{name: "a/b", body: "x"}), false)
	f.Add(mkTar(f, false, tentry{name: "../x", body: "x"}), false)
	f.Add(mkTar(f, false, tentry{name: "l", kind: tar.TypeSymlink, link: "../../etc"}), false)
	f.Add(mkTar(f, false, tentry{name: "r", kind: tar.TypeSymlink, link: "."}, tentry{name: "a", kind: tar.TypeSymlink, link: "r/.."}), false)
	f.Add(mkTar(f, true, tentry{name: "d/", kind: tar.TypeDir}, tentry{name: "d/f", body: "y"}), true)
	f.Add(mkZip(f, map[string]string{"x/y": "z"}, map[string]string{"l": "x"}), false)
	lim := Limits{Download: 1 << 20, Unpacked: 1 << 16, Entries: 64}
	f.Fuzz(func(t *testing.T, data []byte, gz bool) {
		for _, fm := range []Format{FormatTar, FormatTarGz, FormatZip} {
			stream, err := Pack(data, fm, lim)
			if err != nil {
				continue
			}
			links := map[string]*entry{}
			var total int64
			tr := tar.NewReader(bytes.NewReader(stream))
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Pack wrote an unreadable stream: %v", err)
				}
				name := strings.TrimSuffix(h.Name, "/")
				if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || path.Clean(name) != name {
					t.Fatalf("entry %q leaves the release", h.Name)
				}
				switch h.Typeflag {
				case tar.TypeDir, tar.TypeReg:
				case tar.TypeSymlink:
					links[name] = &entry{name: name, kind: tar.TypeSymlink, link: h.Linkname}
				default:
					t.Fatalf("entry %q has type %q", h.Name, h.Typeflag)
				}
				if h.Mode&^0o777 != 0 {
					t.Fatalf("entry %q keeps mode %o", h.Name, h.Mode)
				}
				total += h.Size
			}
			if total > lim.Unpacked {
				t.Fatalf("%d bytes unpacked, limit %d", total, lim.Unpacked)
			}
			for name, e := range links {
				if _, err := resolve(links, joinRaw(path.Dir(name), e.link), 0); err != nil {
					t.Fatalf("link %q -> %q resolves outside", name, e.link)
				}
			}
		}
		_ = gz
	})
}
