package artifact

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"
)

// tentry is one member of a test archive.
type tentry struct {
	name, link, body string
	kind             byte
	mode             int64
}

func mkTar(t testing.TB, gz bool, entries ...tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		kind := e.kind
		if kind == 0 {
			kind = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: kind, Linkname: e.link, Mode: mode, Size: int64(len(e.body)), Uid: 1234, Uname: "evil"}
		if kind != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if kind == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// listing is what a tar stream holds: "name type mode [-> link | =body]".
func listing(t *testing.T, stream []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(stream))
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Uname != "" {
			t.Errorf("%s keeps its owner %d %q", h.Name, h.Uid, h.Uname)
		}
		line := h.Name + " " + string(h.Typeflag) + " " + strings.TrimLeft(strings.TrimPrefix(tarMode(h.Mode), "0"), "")
		switch h.Typeflag {
		case tar.TypeSymlink:
			line += " -> " + h.Linkname
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			line += " =" + string(b)
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

func tarMode(m int64) string {
	return strings.TrimSpace(string(rune('0'+m>>6&7)) + string(rune('0'+m>>3&7)) + string(rune('0'+m&7)))
}

func TestPackKeepsAGoodArchive(t *testing.T) {
	data := mkTar(t, true,
		tentry{name: "./app-1.0/", kind: tar.TypeDir, mode: 0o755},
		tentry{name: "./app-1.0/bin/app", body: "#!/bin/sh\necho 1\n", mode: 0o4755},
		tentry{name: "app-1.0/lib/libx.so.1", body: "x"},
		tentry{name: "app-1.0/lib/libx.so", kind: tar.TypeSymlink, link: "libx.so.1"},
		tentry{name: "app-1.0/bin/lib", kind: tar.TypeSymlink, link: "../lib"},
	)
	stream, err := Pack(data, FormatTarGz, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"app-1.0/ 5 755",
		"app-1.0/bin/app 0 755 =#!/bin/sh\necho 1\n", // setuid dropped
		"app-1.0/bin/lib 2 777 -> ../lib",
		"app-1.0/lib/libx.so 2 777 -> libx.so.1",
		"app-1.0/lib/libx.so.1 0 644 =x",
	}
	if got := listing(t, stream); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPackRefusesHostileArchives(t *testing.T) {
	tests := []struct {
		name    string
		entries []tentry
		says    string
	}{
		{"dot dot", []tentry{{name: "../x", body: "pwned"}}, `"../x" leaves`},
		{"dot dot inside", []tentry{{name: "a/../../x", body: "pwned"}}, "leaves"},
		{"absolute", []tentry{{name: "/etc/passwd", body: "pwned"}}, "absolute"},
		{"link to etc", []tentry{{name: "etc", kind: tar.TypeSymlink, link: "/etc"}}, `link "etc" points to "/etc"`},
		{"link up", []tentry{{name: "a/up", kind: tar.TypeSymlink, link: "../../x"}}, "outside"},
		{"link chain up", []tentry{{name: "r", kind: tar.TypeSymlink, link: "."}, {name: "a", kind: tar.TypeSymlink, link: "r/.."}}, `link "a"`},
		{"write through a link", []tentry{{name: "d", kind: tar.TypeSymlink, link: "sub"}, {name: "sub/", kind: tar.TypeDir}, {name: "d/x", body: "x"}}, "not a directory"},
		{"hard link", []tentry{{name: "x", kind: tar.TypeLink, link: "/etc/shadow"}}, "hard link"},
		{"device", []tentry{{name: "sda", kind: tar.TypeBlock}}, "device"},
		{"char device", []tentry{{name: "null", kind: tar.TypeChar}}, "device"},
		{"fifo", []tentry{{name: "p", kind: tar.TypeFifo}}, "fifo"},
		{"duplicate", []tentry{{name: "x", body: "1"}, {name: "x", kind: tar.TypeSymlink, link: "y"}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Pack(mkTar(t, false, tt.entries...), FormatTar, Limits{})
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("got %v, want ErrUnsafe saying %q", err, tt.says)
			}
		})
	}
}

func TestPackLimits(t *testing.T) {
	data := mkTar(t, false, tentry{name: "a", body: strings.Repeat("x", 100)}, tentry{name: "b", body: "y"})
	if _, err := Pack(data, FormatTar, Limits{Download: 1 << 20, Unpacked: 100, Entries: 10}); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "bytes unpacked") {
		t.Errorf("size: %v", err)
	}
	if _, err := Pack(data, FormatTar, Limits{Download: 1 << 20, Unpacked: 1 << 20, Entries: 1}); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "entries") {
		t.Errorf("entries: %v", err)
	}
	if _, err := Pack(data[:600], FormatTar, Limits{}); err == nil {
		t.Error("a truncated tar was accepted")
	}
}

func mkZip(t testing.TB, files map[string]string, links map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(files[n]))
	}
	for n, target := range links {
		h := &zip.FileHeader{Name: n}
		h.SetMode(0o777 | 1<<27) // os.ModeSymlink
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(target))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPackZip(t *testing.T) {
	stream, err := Pack(mkZip(t, map[string]string{"bin/app": "v2", "VERSION": "2"}, nil), FormatZip, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got := listing(t, stream)
	if len(got) != 2 || got[0] != "VERSION 0 644 =2" || got[1] != "bin/app 0 644 =v2" {
		t.Errorf("got %q", got)
	}
	if _, err := Pack(mkZip(t, map[string]string{"../evil": "x"}, nil), FormatZip, Limits{}); !errors.Is(err, ErrUnsafe) {
		t.Errorf("zip slip: %v", err)
	}
	if _, err := Pack(mkZip(t, map[string]string{"a": "x"}, map[string]string{"etc": "/etc"}), FormatZip, Limits{}); !errors.Is(err, ErrUnsafe) {
		t.Errorf("zip link out: %v", err)
	}
}

func TestFormatOfAndBaseName(t *testing.T) {
	for in, want := range map[string]Format{"a.tar.gz": FormatTarGz, "https://x/a.TGZ?sig=1": FormatTarGz, "/p/a.tar": FormatTar, "a.zip": FormatZip} {
		if got, err := FormatOf(in); err != nil || got != want {
			t.Errorf("FormatOf(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := FormatOf("a.rpm"); err == nil {
		t.Error("a.rpm has a format")
	}
	if got := BaseName("https://x/dl/app-1.2?x=y"); got != "app-1.2" {
		t.Errorf("BaseName = %q", got)
	}
}
