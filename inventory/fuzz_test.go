package inventory

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func FuzzParseINI(f *testing.F) {
	f.Add([]byte(patternINI))
	f.Add([]byte("web[01:03]:2222 a=\"x y\" b=1.5 c=True\n[g:vars]\nv = 'q' # c\n"))
	f.Add([]byte("[p:children]\nc\n[c]\nh\n[c:vars]\nansible_group_priority=3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseINI("fuzz.ini", data)
		if err != nil {
			return
		}
		hosts := inv.Hosts()
		seen := map[string]bool{}
		for _, h := range hosts {
			if h.Name == "" || h.Address == "" || h.Vars == nil {
				t.Fatalf("incomplete host %+v", h)
			}
			if seen[h.Name] {
				t.Fatalf("host %q listed twice", h.Name)
			}
			seen[h.Name] = true
			if inv.Host(h.Name) != h {
				t.Fatalf("Host(%q) is not the listed host", h.Name)
			}
			if !sort.StringsAreSorted(h.Groups) || contains(h.Groups, groupAll) || contains(h.Groups, groupUngrouped) {
				t.Fatalf("host %q groups %v", h.Name, h.Groups)
			}
		}
		if len(hosts) == 0 {
			return
		}
		sel, err := inv.Select("all")
		if err != nil || !reflect.DeepEqual(sel, hosts) {
			t.Fatalf("Select(all) = %v, %v", names(sel), err)
		}
	})
}

func FuzzSelect(f *testing.F) {
	for _, s := range []string{"all", "web:db:&prod:!web3", "~web[0-9]+", "web[0:1]", "web[-1]", "db,web", "w*", "db[!1]", "web[1:]", "!app", "~(a|b){1,2}"} {
		f.Add(s)
	}
	inv, err := ParseINI("fuzz.ini", []byte(patternINI))
	if err != nil {
		f.Fatal(err)
	}
	index := map[*Host]int{}
	for i, h := range inv.Hosts() {
		index[h] = i
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		got, err := inv.Select(pattern)
		if err != nil {
			noMatch, bad := errors.Is(err, ErrNoMatch), errors.Is(err, ErrBadPattern)
			if noMatch == bad {
				t.Fatalf("error %v: want exactly one of ErrNoMatch, ErrBadPattern", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no error and no hosts")
		}
		seen := map[*Host]bool{}
		for _, h := range got {
			if _, ok := index[h]; !ok && !h.Implicit {
				t.Fatalf("result %v holds a host outside the inventory", names(got))
			}
			if seen[h] {
				t.Fatalf("result %v lists a host twice", names(got))
			}
			seen[h] = true
		}
	})
}

// FuzzParseYAML: any input either parses into a consistent inventory or
// fails with an error wrapping ErrParse; never a panic.
func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		"all:\n  hosts:\n    web[01:03]:2222:\n      a: 1\n  children:\n    db:\n      hosts:\n        d1:\n",
		"x: &h\n  h1:\nall:\n  children:\n    web:\n      hosts:\n        <<: *h\n        h2:\n      vars:\n        <<: {a: 1}\n",
		"web:\n  hosts: w1\n  vars:\n    ansible_group_priority: 3\n",
		"{\"all\": {\"hosts\": {\"a\": null}}}",
		"broken: x\nall:\n  children:\n    g: [1]\n",
		"all:\n  vars: &h\n    a: 1\n    <<: *h\n",
		"all: &a\n  children:\n    g: *a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseYAML("fuzz.yml", data)
		if err != nil {
			if !errors.Is(err, ErrParse) && !strings.Contains(err.Error(), "fuzz.yml") {
				t.Fatalf("error %v neither wraps ErrParse nor names the file", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, h := range inv.Hosts() {
			if h.Name == "" || h.Vars == nil || seen[h.Name] || inv.Host(h.Name) != h {
				t.Fatalf("inconsistent host %+v", h)
			}
			seen[h.Name] = true
		}
	})
}
