package inventory

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const patternINI = `[web]
web1
web2
web3

[db]
db1
db2

[prod]
web1
web2
db1

[stage]
web3
db2

[lb]
lb1.example.com

[app:children]
web
db
`

func TestSelect(t *testing.T) {
	inv := mustINI(t, patternINI)
	// ansible-core 2.14's answers (ansible -i INV PATTERN --list-hosts):
	// "all" lists its child groups in the order they were defined, web and
	// db being children of app, which comes last.
	all := []string{"web1", "web2", "db1", "web3", "db2", "lb1.example.com"}
	tests := []struct {
		pattern string
		want    []string
	}{
		{"all", all},
		{"*", all},
		{"web", []string{"web1", "web2", "web3"}},
		{"web1", []string{"web1"}},
		{" web1 ", []string{"web1"}},
		{"lb1.example.com", []string{"lb1.example.com"}},
		{"app", []string{"web1", "web2", "web3", "db1", "db2"}},
		{"web:db", []string{"web1", "web2", "web3", "db1", "db2"}},
		{"db,web", []string{"db1", "db2", "web1", "web2", "web3"}},
		{"db web", []string{"db1", "db2", "web1", "web2", "web3"}},
		{"db2:web1", []string{"db2", "web1"}},
		{"web:&prod", []string{"web1", "web2"}},
		{"web:!web3", []string{"web1", "web2"}},
		{"web:db:&prod:!web2", []string{"web1", "db1"}},
		{"!web2:&prod:web:db", []string{"web1", "db1"}},
		{"web,db,&prod,!web2", []string{"web1", "db1"}},
		{"app:!db", []string{"web1", "web2", "web3"}},
		{"&prod", []string{"web1", "web2", "db1"}},
		{"!app", []string{"lb1.example.com"}},
		{"web*", []string{"web1", "web2", "web3"}},
		{"w*1", []string{"web1"}},
		{"web?", []string{"web1", "web2", "web3"}},
		{"db[!1]", []string{"db2"}},
		{"*.example.com", []string{"lb1.example.com"}},
		{"~web[0-9]+", []string{"web1", "web2", "web3"}},
		{"~(web|db)1", []string{"web1", "db1"}},
		{"~db", []string{"db1", "db2"}},
		{"~lb1\\.example", []string{"lb1.example.com"}},
		{"~web[0-9]{1,2}:!web1", []string{"web2", "web3"}},
		{"web[0]", []string{"web1"}},
		{"web[-1]", []string{"web3"}},
		{"web[0:1]", []string{"web1", "web2"}},
		{"web[1:]", []string{"web2", "web3"}},
		{"web[1:99]", []string{"web2", "web3"}},
		{"app[3]", []string{"db1"}},
		{"web[0]:db[-1]", []string{"web1", "db2"}},
		{"web:!web[0]", []string{"web2", "web3"}},
		{"web*[2]", []string{"web3"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := inv.Select(tt.pattern)
			if len(tt.want) == 0 {
				if !errors.Is(err, ErrNoMatch) {
					t.Fatalf("err = %v, want ErrNoMatch", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("got %v, want %v", names(got), tt.want)
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	inv := mustINI(t, patternINI)
	tests := []struct {
		pattern string
		is      error
		want    string
	}{
		{"nope", ErrNoMatch, `"nope" (known groups: app, db, lb, prod, stage, web)`},
		{"~eb", ErrNoMatch, "~eb"}, // regexes are anchored at the start
		{"prod:&stage", ErrNoMatch, "prod:&stage"},
		{"web:&prod:&stage:db", ErrNoMatch, ""},
		{"web:!web", ErrNoMatch, ""},
		{"web[3]", ErrNoMatch, "out of range"},
		{"web[-4]", ErrNoMatch, "out of range"},
		{"web[5:9]", ErrNoMatch, ""},
		{"", ErrBadPattern, "expected a host or group name"},
		{" , : ", ErrBadPattern, "expected a host or group name"},
		{"web:!", ErrBadPattern, `after "!"`},
		{"web:&!db", ErrBadPattern, `after "&"`},
		{"web[0", ErrBadPattern, "closing bracket"},
		{"web]", ErrBadPattern, "without '['"},
		{"web[[0]]", ErrBadPattern, "another '['"},
		{"~web(", ErrBadPattern, "closing bracket"},
		{"~web)", ErrBadPattern, "regular expression"},
		{"web[1-2]", ErrBadPattern, "[x:y]"},
		{"@retry", ErrBadPattern, "not supported"},
		{"~", ErrBadPattern, "regular expression"},
		{"db[z-a]", ErrBadPattern, "glob"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			_, err := inv.Select(tt.pattern)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			other := ErrBadPattern
			if tt.is == ErrBadPattern {
				other = ErrNoMatch
			}
			if errors.Is(err, other) {
				t.Errorf("err %v wraps both sentinels", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	inv := mustINI(t, patternINI)
	tests := []struct {
		pattern, limit string
		want           []string
		is             error
		wantMsg        []string
	}{
		{pattern: "web", limit: "", want: []string{"web1", "web2", "web3"}},
		{pattern: "web", limit: "prod", want: []string{"web1", "web2"}},
		{pattern: "app", limit: "db1:web2", want: []string{"web2", "db1"}},
		{pattern: "app", limit: "all:!stage", want: []string{"web1", "web2", "db1"}},
		{pattern: "app", limit: "web[0]", want: []string{"web1"}},
		{pattern: "web", limit: "db", is: ErrNoMatch, wantMsg: []string{`"web"`, `"db"`, "db1, db2"}},
		{pattern: "web", limit: "nothing", is: ErrNoMatch, wantMsg: []string{`"nothing"`}},
		{pattern: "nope", limit: "web", is: ErrNoMatch, wantMsg: []string{`"nope"`}},
		{pattern: "web", limit: "~(", is: ErrBadPattern, wantMsg: []string{"limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"|"+tt.limit, func(t *testing.T) {
			got, err := inv.Limit(tt.pattern, tt.limit)
			if tt.is != nil {
				if !errors.Is(err, tt.is) {
					t.Fatalf("err = %v, want %v", err, tt.is)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("err = %q, want %q", err, m)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("got %v, want %v", names(got), tt.want)
			}
		})
	}
}

func TestSelectSpecialNames(t *testing.T) {
	inv := mustINI(t, "2001:db8::1\n[web]\nweb1\n[db]\nweb1\n[web1]\nother\n")
	tests := []struct {
		pattern string
		want    []string
	}{
		{"2001:db8::1", []string{"2001:db8::1"}},
		{"ungrouped", []string{"2001:db8::1"}},
		// A host named like a group: the plain name selects the host.
		{"web1", []string{"web1"}},
		// As in Ansible, only a plain (union) term is looked up as a host
		// first; !web1 matches the group web1.
		{"!web1", []string{"2001:db8::1", "web1"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := inv.Select(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("got %v, want %v", names(got), tt.want)
			}
		})
	}
	if w := inv.Warnings(); len(w) != 1 || !strings.Contains(w[0], `"web1"`) {
		t.Errorf("warnings = %q", w)
	}
}

// NameList names at most max hosts, then says how many more in the
// caller's words.
func TestNameList(t *testing.T) {
	hosts := func(n int) []*Host {
		var hs []*Host
		for i := 1; i <= n; i++ {
			hs = append(hs, &Host{Name: fmt.Sprintf("web%d", i)})
		}
		return hs
	}
	for _, tt := range []struct {
		n, max int
		more   string
		want   string
	}{
		{0, 5, "and %d more", ""},
		{2, 5, "and %d more", "web1, web2"},
		{5, 5, "and %d more", "web1, web2, web3, web4, web5"},
		{7, 5, "and %d more", "web1, web2, web3, web4, web5, and 2 more"},
		{3, 2, "… %d more", "web1, web2, … 1 more"},
	} {
		if got := NameList(hosts(tt.n), tt.max, tt.more); got != tt.want {
			t.Errorf("NameList(%d hosts, %d, %q) = %q, want %q", tt.n, tt.max, tt.more, got, tt.want)
		}
	}
}
