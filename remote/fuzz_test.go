package remote

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/transport"
)

// chunkReader hands out data in pieces of the sizes it cycles through, as
// an SSH channel does, then io.EOF.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.data), r.sizes[r.i%len(r.sizes)])
	r.i++
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// FuzzSessionFraming feeds the host session's framing (see session.go)
// two commands' output on each stream — stdout: NONCE"S\n" output
// NONCE"E"STATUS"\n"; stderr: NONCE"S\n" output NONCE"E\n" — with
// arbitrary bytes before, between and inside the frames, an arbitrary
// status text, cut into arbitrary pieces and possibly cut short. Every
// command gets exactly its own output and its status (or "unreadable exit
// status"); a stream cut short fails the commands it did not finish with
// transport.ErrLost, having given them only a prefix of their output; and
// nothing panics. (Output holding a command's own 128-bit nonce cannot
// happen and is skipped.)
func FuzzSessionFraming(f *testing.F) {
	f.Add([]byte("Welcome to host\n"), []byte("out one\n"), "0", []byte("stray"), []byte{0, 1, 2, 'r', 'o'}, uint8(7), uint16(65535))
	f.Add([]byte{}, []byte("rollout-"), "1", []byte{}, []byte("rollout-00"), uint8(0), uint16(40))
	f.Add([]byte("x"), []byte(strings.Repeat("E", 100)), "abc", []byte("\n"), []byte("S\n"), uint8(1), uint16(65535))
	f.Add([]byte{}, []byte{}, "-3", []byte{}, []byte{}, uint8(200), uint16(3))
	f.Fuzz(func(t *testing.T, junk, out1 []byte, status1 string, between, out2 []byte, chunk uint8, cut uint16) {
		n1 := "rollout-00112233445566778899aabbccddeeff"
		n2 := "rollout-ffeeddccbbaa99887766554433221100"
		if strings.Contains(status1, "\n") {
			t.Skip("a status line ends at its newline")
		}
		for _, p := range [][]byte{junk, out1, []byte(status1), between, out2} {
			if bytes.Contains(p, []byte(n1)) || bytes.Contains(p, []byte(n2)) {
				t.Skip("output holding its command's nonce")
			}
		}
		var stdout, stderr []byte
		stdout = append(stdout, junk...)
		stdout = append(stdout, n1+"S\n"...)
		stdout = append(stdout, out1...)
		stdout = append(stdout, n1+"E"+status1+"\n"...)
		stdout = append(stdout, between...)
		stdout = append(stdout, n2+"S\n"...)
		stdout = append(stdout, out2...)
		stdout = append(stdout, n2+"E0\n"...)
		stderr = append(stderr, junk...)
		stderr = append(stderr, n1+"S\n"...)
		stderr = append(stderr, out1...)
		stderr = append(stderr, n1+"E\n"...)
		stderr = append(stderr, between...)
		stderr = append(stderr, n2+"S\n"...)
		stderr = append(stderr, out2...)
		stderr = append(stderr, n2+"E\n"...)

		sizes := []int{1 + int(chunk)%64, 1 + int(chunk)/4, 1 + int(chunk)%7}
		for _, s := range []struct {
			name       string
			data       []byte
			wantStatus bool
			end        string
		}{{"stdout", stdout, true, "E"}, {"stderr", stderr, false, "E\n"}} {
			data := s.data
			short := int(cut) < len(data)
			if short {
				data = data[:cut]
			}
			d := &demux{junk: &tailBuffer{max: 4 << 10}}
			var got [2]bytes.Buffer
			jobs := []*streamJob{
				{start: []byte(n1 + "S\n"), end: []byte(n1 + s.end), w: &got[0], wantStatus: s.wantStatus, done: make(chan struct{})},
				{start: []byte(n2 + "S\n"), end: []byte(n2 + s.end), w: &got[1], wantStatus: s.wantStatus, done: make(chan struct{})},
			}
			for _, j := range jobs {
				d.add(j)
			}
			d.loop(&chunkReader{data: data, sizes: sizes})
			want := [][]byte{out1, out2}
			for i, j := range jobs {
				select {
				case <-j.done:
				default:
					t.Fatalf("%s: command %d not finished after the stream ended", s.name, i+1)
				}
				if j.err != nil && transport.Lost(j.err) {
					if !short {
						t.Fatalf("%s: command %d lost on a whole stream: %v", s.name, i+1, j.err)
					}
					if !bytes.HasPrefix(want[i], got[i].Bytes()) {
						t.Fatalf("%s: command %d cut short got %q, not a prefix of %q", s.name, i+1, got[i].Bytes(), want[i])
					}
					continue
				}
				if !bytes.Equal(got[i].Bytes(), want[i]) {
					t.Fatalf("%s: command %d got %q, want %q", s.name, i+1, got[i].Bytes(), want[i])
				}
				if !s.wantStatus {
					if j.err != nil {
						t.Fatalf("%s: command %d: %v", s.name, i+1, j.err)
					}
					continue
				}
				st := "0"
				if i == 0 {
					st = status1
				}
				if v, err := strconv.Atoi(st); err == nil {
					if j.err != nil || j.status != v {
						t.Fatalf("%s: command %d status %d (%v), want %d", s.name, i+1, j.status, j.err, v)
					}
				} else if j.err == nil || !strings.Contains(j.err.Error(), "unreadable exit status") {
					t.Fatalf("%s: command %d status text %q read as %d (%v)", s.name, i+1, st, j.status, j.err)
				}
			}
			if !short && !errors.Is(d.dead, transport.ErrLost) {
				t.Fatalf("%s: the demux did not mark the ended stream dead: %v", s.name, d.dead)
			}
		}
	})
}
