package drain

import (
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
