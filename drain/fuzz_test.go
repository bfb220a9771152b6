package drain

import (
	"bufio"
	"strings"
	"testing"
)

func FuzzParseStat(f *testing.F) {
	f.Add("# pxname,svname,qcur,scur,status,weight,\nweb,web1,0,3,UP,100,\n\n")
	f.Add("# status,svname,pxname\n\"UP 1/3\",a,web\n")
	f.Add("No such proxy.\n\n")
	f.Add("\nPermission denied\n\n")
	f.Add("# pxname,svname,status,scur\nweb,a,UP\nweb,b,DOWN,1,extra\n")
	f.Fuzz(func(t *testing.T, reply string) {
		rows, err := parseStat(reply)
		if err != nil {
			if rows != nil {
				t.Fatalf("rows with an error: %v", rows)
			}
			return
		}
		if !strings.HasPrefix(strings.TrimLeft(reply, "\r\n"), "# ") {
			t.Fatalf("accepted a reply without the header: %q", reply)
		}
		for _, r := range rows {
			if r.Fields == nil || r.Fields["pxname"] != r.Proxy || r.Fields["svname"] != r.Server || r.Fields["status"] != r.Status {
				t.Fatalf("row fields disagree: %+v", r)
			}
		}
	})
}

// FuzzReadReply: the interactive-mode framing never panics, never reads
// past its budget, and a well-framed reply round-trips.
func FuzzReadReply(f *testing.F) {
	f.Add("\n> ", "No such server.\n")
	f.Add("[3]: No such server.\n\n> ", "")
	f.Add("a\n\nb\n\n> ", "# pxname,svname\nweb,a\n")
	f.Add("\n\n\n", "x\n\ny\n")
	f.Fuzz(func(t *testing.T, stream, body string) {
		budget := 1 << 10
		r := bufio.NewReader(strings.NewReader(stream))
		for i := 0; i < 8; i++ {
			if _, err := readReply(r, &budget); err != nil {
				break
			}
		}
		if budget < -(1 << 16) {
			t.Fatalf("read far past the budget: %d", budget)
		}
		// a body without an empty line followed by "> " frames back to itself
		if strings.Contains("\n"+body, "\n\n> ") || body != "" && !strings.HasSuffix(body, "\n") {
			return
		}
		budget = maxReply
		got, err := readReply(bufio.NewReader(strings.NewReader(body+"\n> ")), &budget)
		if err != nil {
			t.Fatalf("framed %q: %v", body, err)
		}
		if want := parseSeverity(body); got != want {
			t.Fatalf("framed %q: got %+v, want %+v", body, got, want)
		}
	})
}
