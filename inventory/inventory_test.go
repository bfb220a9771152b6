package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func mustINI(t *testing.T, src string) *Inventory {
	t.Helper()
	inv, err := ParseINI("inv.ini", []byte(src))
	if err != nil {
		t.Fatalf("ParseINI: %v", err)
	}
	return inv
}

func mustYAML(t *testing.T, src string) *Inventory {
	t.Helper()
	inv, err := ParseYAML("inv.yml", []byte(src))
	if err != nil {
		t.Fatalf("ParseYAML: %v", err)
	}
	return inv
}

// dump renders everything a caller can see, one line per host, in order.
func dump(inv *Inventory) []string {
	var out []string
	for _, h := range inv.Hosts() {
		keys := make([]string, 0, len(h.Vars))
		for k := range h.Vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var vars []string
		for _, k := range keys {
			vars = append(vars, fmt.Sprintf("%s=%#v", k, h.Vars[k]))
		}
		out = append(out, fmt.Sprintf("%s addr=%s port=%d user=%s key=%s become=%v groups=%v vars={%s}",
			h.Name, h.Address, h.Port, h.User, h.KeyFile, h.Become, h.Groups, strings.Join(vars, " ")))
	}
	out = append(out, "groups: "+strings.Join(inv.GroupNames(), ","))
	return out
}

func names(hosts []*Host) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h.Name
	}
	return out
}

// The examples of Ansible's "How to build your inventory" guide, in INI
// and in the YAML the guide gives as equivalent.
func TestDocExamplesINIEqualsYAML(t *testing.T) {
	tests := []struct {
		name      string
		ini, yaml string
		hosts     []string
		groups    []string
		check     func(t *testing.T, inv *Inventory)
	}{
		{
			name: "basics",
			ini: `mail.example.com

[webservers]
foo.example.com
bar.example.com

[dbservers]
one.example.com
two.example.com
three.example.com
`,
			yaml: `ungrouped:
  hosts:
    mail.example.com:
webservers:
  hosts:
    foo.example.com:
    bar.example.com:
dbservers:
  hosts:
    one.example.com:
    two.example.com:
    three.example.com:
`,
			hosts:  []string{"mail.example.com", "foo.example.com", "bar.example.com", "one.example.com", "two.example.com", "three.example.com"},
			groups: []string{"dbservers", "webservers"},
		},
		{
			name: "groups of groups",
			ini: `[webservers]
example1.example.com
example2.example.com

[dbservers]
one.example.com
two.example.com
three.example.com

[east]
foo.example.com
one.example.com
two.example.com

[west]
bar.example.com
three.example.com

[prod:children]
east

[test:children]
west
`,
			yaml: `all:
  children:
    webservers:
      hosts:
        example1.example.com:
        example2.example.com:
    dbservers:
      hosts:
        one.example.com:
        two.example.com:
        three.example.com:
    east:
      hosts:
        foo.example.com:
        one.example.com:
        two.example.com:
    west:
      hosts:
        bar.example.com:
        three.example.com:
    prod:
      children:
        east:
    test:
      children:
        west:
`,
			hosts:  []string{"example1.example.com", "example2.example.com", "one.example.com", "two.example.com", "three.example.com", "foo.example.com", "bar.example.com"},
			groups: []string{"dbservers", "east", "prod", "test", "webservers", "west"},
			check: func(t *testing.T, inv *Inventory) {
				if got, want := inv.Host("one.example.com").Groups, []string{"dbservers", "east", "prod"}; !reflect.DeepEqual(got, want) {
					t.Errorf("one.example.com groups = %v, want %v", got, want)
				}
			},
		},
		{
			name: "variables and children",
			ini: `[atlanta]
host1 http_port=80 maxRequestsPerChild=808
host2 http_port=303 maxRequestsPerChild=909

[raleigh]
host2
host3

[southeast:children]
atlanta
raleigh

[southeast:vars]
some_server=foo.southeast.example.com
halon_system_timeout=30
self_destruct_countdown=60
escape_pods=2

[usa:children]
southeast
northeast

[northeast]
host4
`,
			yaml: `all:
  children:
    usa:
      children:
        southeast:
          children:
            atlanta:
              hosts:
                host1:
                  http_port: 80
                  maxRequestsPerChild: 808
                host2:
                  http_port: 303
                  maxRequestsPerChild: 909
            raleigh:
              hosts:
                host2:
                host3:
          vars:
            some_server: foo.southeast.example.com
            halon_system_timeout: 30
            self_destruct_countdown: 60
            escape_pods: 2
        northeast:
          hosts:
            host4:
`,
			// ansible-core lists a group level by level: northeast (host4) is a
			// child of usa, atlanta and raleigh are grandchildren
			hosts:  []string{"host4", "host1", "host2", "host3"},
			groups: []string{"atlanta", "northeast", "raleigh", "southeast", "usa"},
			check: func(t *testing.T, inv *Inventory) {
				h2 := inv.Host("host2")
				if h2.Vars["http_port"] != int64(303) || h2.Vars["halon_system_timeout"] != int64(30) || h2.Vars["some_server"] != "foo.southeast.example.com" {
					t.Errorf("host2 vars = %v", h2.Vars)
				}
				if got, want := h2.Groups, []string{"atlanta", "raleigh", "southeast", "usa"}; !reflect.DeepEqual(got, want) {
					t.Errorf("host2 groups = %v, want %v", got, want)
				}
				if _, ok := inv.Host("host4").Vars["some_server"]; ok {
					t.Errorf("host4 got southeast vars: %v", inv.Host("host4").Vars)
				}
			},
		},
		{
			name: "connection variables",
			ini: `jumper ansible_port=5555 ansible_host=192.0.2.50

[targets]
localhost              ansible_connection=local
other1.example.com     ansible_connection=ssh        ansible_user=myuser
other2.example.com     ansible_connection=ssh        ansible_user=myotheruser
`,
			yaml: `all:
  hosts:
    jumper:
      ansible_port: 5555
      ansible_host: 192.0.2.50
  children:
    targets:
      hosts:
        localhost:
          ansible_connection: local
        other1.example.com:
          ansible_connection: ssh
          ansible_user: myuser
        other2.example.com:
          ansible_connection: ssh
          ansible_user: myotheruser
`,
			hosts:  []string{"jumper", "localhost", "other1.example.com", "other2.example.com"},
			groups: []string{"targets"},
			check: func(t *testing.T, inv *Inventory) {
				j := inv.Host("jumper")
				if j.Address != "192.0.2.50" || j.Port != 5555 || len(j.Groups) != 0 {
					t.Errorf("jumper = %+v", j)
				}
				if u := inv.Host("other2.example.com").User; u != "myotheruser" {
					t.Errorf("other2 user = %q", u)
				}
				if ug, _ := inv.Select("ungrouped"); !reflect.DeepEqual(names(ug), []string{"jumper"}) {
					t.Errorf("ungrouped = %v", names(ug))
				}
			},
		},
		{
			name: "ranges",
			ini: `[webservers]
www[01:03].example.com
[databases]
db-[a:c].example.com
`,
			yaml: `webservers:
  hosts:
    www[01:03].example.com:
databases:
  hosts:
    db-[a:c].example.com:
`,
			hosts:  []string{"www01.example.com", "www02.example.com", "www03.example.com", "db-a.example.com", "db-b.example.com", "db-c.example.com"},
			groups: []string{"databases", "webservers"},
		},
		{
			name: "host with port and group vars",
			ini: `[web]
web1:2222
web2 ansible_host=10.0.0.2

[web:vars]
ansible_user=deploy
`,
			yaml: `all:
  children:
    web:
      hosts:
        web1:2222:
        web2:
          ansible_host: 10.0.0.2
      vars:
        ansible_user: deploy
`,
			hosts:  []string{"web1", "web2"},
			groups: []string{"web"},
			check: func(t *testing.T, inv *Inventory) {
				if h := inv.Host("web1"); h.Port != 2222 || h.User != "deploy" || h.Address != "web1" {
					t.Errorf("web1 = %+v", h)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromINI, fromYAML := mustINI(t, tt.ini), mustYAML(t, tt.yaml)
			if got := names(fromINI.Hosts()); !reflect.DeepEqual(got, tt.hosts) {
				t.Errorf("INI hosts = %v, want %v", got, tt.hosts)
			}
			if got := fromINI.GroupNames(); !reflect.DeepEqual(got, tt.groups) {
				t.Errorf("INI groups = %v, want %v", got, tt.groups)
			}
			if a, b := dump(fromINI), dump(fromYAML); !reflect.DeepEqual(a, b) {
				t.Errorf("INI and YAML differ:\nINI:  %s\nYAML: %s", strings.Join(a, "\n      "), strings.Join(b, "\n      "))
			}
			if tt.check != nil {
				t.Run("ini", func(t *testing.T) { tt.check(t, fromINI) })
				t.Run("yaml", func(t *testing.T) { tt.check(t, fromYAML) })
			}
		})
	}
}

func TestINIRanges(t *testing.T) {
	tests := []struct {
		line    string
		want    []string
		wantErr string
	}{
		{line: "web[01:03].example.com", want: []string{"web01.example.com", "web02.example.com", "web03.example.com"}},
		{line: "web[8:11]", want: []string{"web8", "web9", "web10", "web11"}},
		{line: "web[1:10:4]", want: []string{"web1", "web5", "web9"}},
		{line: "web[01:09:3]", want: []string{"web01", "web04", "web07"}},
		{line: "web[:2]", want: []string{"web0", "web1", "web2"}},
		{line: "db-[a:c]", want: []string{"db-a", "db-b", "db-c"}},
		{line: "db-[y:B]", want: []string{"db-y", "db-z", "db-A", "db-B"}},
		{line: "r[1:2]-n[a:b]", want: []string{"r1-na", "r1-nb", "r2-na", "r2-nb"}},
		{line: "web[1:2]:2222", want: []string{"web1", "web2"}},
		{line: "web[1]", wantErr: "expected [begin:end]"},
		{line: "web[1:]", wantErr: "expected an end value"},
		{line: "web[3:1]", wantErr: "begin <= end"},
		{line: "web[c:a]", wantErr: "begin <= end"},
		{line: "web[01:100]", wantErr: "equal width"},
		{line: "web[1:5:0]", wantErr: "positive step"},
		{line: "web[a:5]", wantErr: "two numbers or two letters"},
		{line: "web[0:99999999]", wantErr: "more than"},
		{line: "web[1:2", wantErr: "expected ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			inv, err := ParseINI("inv.ini", []byte("[g]\n"+tt.line+"\n"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "inv.ini:2: ") {
					t.Fatalf("err = %v, want inv.ini:2: ...%s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(inv.Hosts()); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("hosts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestINIValues(t *testing.T) {
	tests := []struct {
		name string
		line string // a host line after "h "; or, with prefix "vars:", a [g:vars] line
		want any
	}{
		{"int", `v=42`, int64(42)},
		{"negative int", `v=-7`, int64(-7)},
		{"hex", `v=0x1F`, int64(31)},
		{"underscores", `v=1_000`, int64(1000)},
		{"leading zero is a string", `v=0755`, "0755"},
		{"float", `v=1.5`, 1.5},
		{"exponent", `v=1e3`, 1000.0},
		{"True", `v=True`, true},
		{"False", `v=False`, false},
		{"lowercase true stays a string", `v=true`, "true"},
		{"None", `v=None`, nil},
		{"plain string", `v=hello`, "hello"},
		{"double quoted with spaces", `v="hello world"`, "hello world"},
		{"single quoted", `v='a b'`, "a b"},
		{"quoted number is still a number", `v="42"`, int64(42)},
		{"python string literal keeps a string", `v="'42'"`, "42"},
		{"quoted hash is not a comment", `v="'03#pa33w0rd'"`, "03#pa33w0rd"},
		{"hash starts a comment", `v=abc#def`, "abc"},
		{"math is not evaluated", `v=10-5`, "10-5"},
		{"list stays a string", `v=[1,2]`, "[1,2]"},
		{"equals in value", `v=a=b`, "a=b"},
		{"escaped space", `v=a\ b`, "a b"},
		{"vars int", "vars:v=23", int64(23)},
		{"vars bool with comment", "vars:v = True # yes", true},
		{"vars string keeps trailing comment like Ansible", "vars:v = bar # note", "bar # note"},
		{"vars spaces kept", "vars:v = hello world", "hello world"},
		{"vars quoted", `vars:v = "a b"`, "a b"},
		{"vars empty", "vars:v =", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "[g]\nh " + tt.line + "\n"
			if rest, ok := strings.CutPrefix(tt.line, "vars:"); ok {
				src = "[g]\nh\n[g:vars]\n" + rest + "\n"
			}
			inv := mustINI(t, src)
			got, ok := inv.Host("h").Vars["v"]
			if !ok {
				t.Fatalf("v not set: %v", inv.Host("h").Vars)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("v = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestINIErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		want      string
	}{
		{"unknown section type", "[web:hostz]\n", 1, `unknown type "hostz"`},
		{"space in section", "[web servers]\n", 1, "invalid section"},
		{"host var without equals", "[web]\nweb1 ansible_user\n", 2, "expected key=value"},
		{"unclosed quote", "[web]\nweb1 a=\"x\n", 2, "closing \" quote"},
		{"vars without equals", "[web]\nweb1\n[web:vars]\nfoo\n", 4, "expected key=value"},
		{"vars for undefined group", "[web]\nweb1\n[db:vars]\nx=1\n", 3, "never defined"},
		{"child never defined", "[web:children]\napp\n# end\n", 2, `includes group "app"`},
		{"child line with spaces", "[web:children]\napp db\n", 2, "expected a group name"},
		{"children loop", "[a:children]\nb\n[b:children]\na\n", 4, "creates a loop"},
		{"port out of range", "[web]\nweb1:70000\n", 2, "1 to 65535"},
		{"trailing colon", "[web]\nweb1:\n", 2, "port number"},
		{"yaml marker", "---\n", 1, "YAML"},
		{"bad ansible_port", "[web]\nweb1 ansible_port=ssh\n", 0, "ansible_port: expected a port number"},
		{"undefined jinja in ansible_host", "[web]\nweb1 ansible_host='{{ x }}'\n", 0, "host web1: ansible_host:1: 'x' is undefined"},
		{"bad group priority", "[web]\nweb1\n[web:vars]\nansible_group_priority=high\n", 4, "ansible_group_priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseINI("inv.ini", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			prefix := "inv.ini: "
			if tt.line > 0 {
				prefix = fmt.Sprintf("inv.ini:%d: ", tt.line)
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want prefix %q and %q", err, prefix, tt.want)
			}
		})
	}
}

func TestChildrenBeforeDefinition(t *testing.T) {
	inv := mustINI(t, `[prod:children]
web
db

[web]
web1

[db]
db1

[prod:vars]
tier=prod
`)
	sel, err := inv.Select("prod")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(sel); !reflect.DeepEqual(got, []string{"web1", "db1"}) {
		t.Errorf("prod = %v", got)
	}
	if inv.Host("db1").Vars["tier"] != "prod" {
		t.Errorf("db1 vars = %v", inv.Host("db1").Vars)
	}
}

func TestVariablePrecedence(t *testing.T) {
	// Same tree in INI and YAML: all < usa (depth 1) < east (depth 2) <
	// atlanta (depth 3) < host. Same-depth groups merge alphabetically
	// unless ansible_group_priority says otherwise.
	ini := `[atlanta]
h1 v=host
h2
h3

[east:children]
atlanta

[usa:children]
east

[zeta]
h2
h3

[alpha]
h2
h3

[alpha:vars]
same=alpha

[zeta:vars]
same=zeta

[all:vars]
v=all
only_all=1

[usa:vars]
v=usa
usa=1

[east:vars]
v=east

[atlanta:vars]
v=atlanta
`
	yaml := `all:
  vars:
    v: all
    only_all: 1
  children:
    usa:
      vars: {v: usa, usa: 1}
      children:
        east:
          vars: {v: east}
          children:
            atlanta:
              vars: {v: atlanta}
              hosts:
                h1: {v: host}
                h2:
                h3:
    zeta:
      vars: {same: zeta}
      hosts: {h2: , h3: }
    alpha:
      vars: {same: alpha}
      hosts: {h2: , h3: }
`
	for name, inv := range map[string]*Inventory{"ini": mustINI(t, ini), "yaml": mustYAML(t, yaml)} {
		t.Run(name, func(t *testing.T) {
			tests := []struct {
				host, key string
				want      any
			}{
				{"h1", "v", "host"},
				{"h2", "v", "atlanta"},
				{"h2", "usa", int64(1)},
				{"h2", "only_all", int64(1)},
				{"h2", "same", "zeta"},
			}
			for _, tt := range tests {
				if got := inv.Host(tt.host).Vars[tt.key]; !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s %s = %#v, want %#v", tt.host, tt.key, got, tt.want)
				}
			}
		})
	}

	t.Run("group priority", func(t *testing.T) {
		inv := mustINI(t, "[a]\nh\n[b]\nh\n[a:vars]\nx=a\nansible_group_priority=10\n[b:vars]\nx=b\n")
		if got := inv.Host("h").Vars["x"]; got != "a" {
			t.Errorf("x = %v, want a (higher priority wins)", got)
		}
		if _, ok := inv.Host("h").Vars["ansible_group_priority"]; ok {
			t.Error("ansible_group_priority leaked into vars")
		}
	})
	t.Run("depth beats name", func(t *testing.T) {
		// "a" is a child of "z": deeper, so it wins although it sorts first.
		inv := mustINI(t, "[z:children]\na\n[a]\nh\n[z:vars]\nx=z\n[a:vars]\nx=a\n")
		if got := inv.Host("h").Vars["x"]; got != "a" {
			t.Errorf("x = %v, want a", got)
		}
	})
}

func TestConnectionVars(t *testing.T) {
	home, _ := os.UserHomeDir()
	tests := []struct {
		name string
		line string
		want Host
	}{
		{"defaults", "h", Host{Address: "h"}},
		{"all set", "h ansible_host=10.0.0.1 ansible_port=2200 ansible_user=ops ansible_ssh_private_key_file=/k ansible_become=yes",
			Host{Address: "10.0.0.1", Port: 2200, User: "ops", KeyFile: "/k", Become: true}},
		{"old aliases", "h ansible_ssh_host=10.0.0.2 ansible_ssh_port=2201 ansible_ssh_user=old",
			Host{Address: "10.0.0.2", Port: 2201, User: "old"}},
		// ansible-core 2.14 connects to ansible_ssh_host when both are set
		// (its ssh plugin lists the alias last, and the last one set wins)
		{"legacy alias wins over current name", "h ansible_ssh_host=old ansible_host=new", Host{Address: "old"}},
		{"port shorthand", "h:2022", Host{Address: "h", Port: 2022}},
		{"inline port beats shorthand", "h:2022 ansible_port=2023", Host{Address: "h", Port: 2023}},
		{"tilde key", "h ansible_ssh_private_key_file=~/.ssh/deploy", Host{Address: "h", KeyFile: home + "/.ssh/deploy"}},
		{"private_key_file", "h ansible_private_key_file=/p", Host{Address: "h", KeyFile: "/p"}},
		{"become True", "h ansible_become=True", Host{Address: "h", Become: true}},
		{"become 1", "h ansible_become=1", Host{Address: "h", Become: true}},
		{"become no", "h ansible_become=no", Host{Address: "h"}},
		{"become False", "h ansible_become=False", Host{Address: "h"}},
		{"ipv6 with port", "[2001:db8::1]:2222", Host{Address: "2001:db8::1", Port: 2222}},
		{"ipv6 without port", "2001:db8::1", Host{Address: "2001:db8::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := mustINI(t, "[g]\n"+tt.line+"\n")
			h := inv.Hosts()[0]
			got := Host{Address: h.Address, Port: h.Port, User: h.User, KeyFile: h.KeyFile, Become: h.Become}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHostOrderAndRepeats(t *testing.T) {
	inv := mustINI(t, `b0
[web]
w2 x=1
w1
[db]
d1
w2 x=2 y=3
[web]
w3
`)
	// ansible-core: ungrouped first, then each group's hosts in the order
	// the groups were defined
	if got, want := names(inv.Hosts()), []string{"b0", "w2", "w1", "w3", "d1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	w2 := inv.Host("w2")
	if w2.Vars["x"] != int64(2) || w2.Vars["y"] != int64(3) || !reflect.DeepEqual(w2.Groups, []string{"db", "web"}) {
		t.Errorf("w2 = %+v", w2)
	}
	if inv.Host("nope") != nil {
		t.Error("Host(nope) != nil")
	}
}

func TestYAMLSpecifics(t *testing.T) {
	inv := mustYAML(t, `# comment
all:
  vars:
    enabled: yes
    mode: "0644"
    list: [1, two]
    nested: {a: {b: 1}}
  hosts:
    solo:
  children:
    web:
      hosts: web1
      hostz:
        web9:
    app:
      children:
        web:
          hosts:
            web2:
              ansible_port: 2200
          vars:
            role: web
`)
	if got, want := names(inv.Hosts()), []string{"solo", "web1", "web2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts = %v, want %v", got, want)
	}
	w1 := inv.Host("web1")
	if w1.Vars["role"] != "web" || !reflect.DeepEqual(w1.Groups, []string{"app", "web"}) {
		t.Errorf("web1 (group web defined twice, merged) = %+v", w1)
	}
	if w1.Vars["enabled"] != true || w1.Vars["mode"] != "0644" {
		t.Errorf("vars = %#v", w1.Vars)
	}
	if !reflect.DeepEqual(w1.Vars["list"], []any{int64(1), "two"}) || !reflect.DeepEqual(w1.Vars["nested"], map[string]any{"a": map[string]any{"b": int64(1)}}) {
		t.Errorf("structured vars = %#v %#v", w1.Vars["list"], w1.Vars["nested"])
	}
	if inv.Host("web2").Port != 2200 {
		t.Errorf("web2 port = %d", inv.Host("web2").Port)
	}
	warnings := inv.Warnings()
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "inv.yml:13: ") || !strings.Contains(warnings[0], `"hostz"`) {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		want      string
	}{
		{"syntax", "all:\n  hosts:\n    web1: [\n", 0, "inv.yml:"},
		{"empty", "", 0, "empty document"},
		{"not a mapping", "- a\n- b\n", 1, "expected a mapping of groups"},
		{"hosts as list", "all:\n  hosts:\n    - web1\n", 3, "expected a mapping"},
		{"host vars not a mapping", "all:\n  hosts:\n    web1: 5\n", 3, "expected a mapping of variables"},
		{"plugin config", "plugin: aws_ec2\nregions: [x]\n", 1, "inventory plugin configuration"},
		{"bad range", "all:\n  hosts:\n    web[3:1]:\n", 3, "begin <= end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML("inv.yml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrParse) {
				t.Errorf("err %v does not wrap ErrParse", err)
			}
			if tt.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("inv.yml:%d: ", tt.line)) {
				t.Errorf("err = %q, want line %d", err, tt.line)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestLoadDetectsFormat(t *testing.T) {
	dir := t.TempDir()
	yamlSrc := "all:\n  hosts:\n    web1:\n"
	iniSrc := "[web]\nweb1\n"
	tests := []struct {
		file, src string
	}{
		{"hosts.yml", yamlSrc},
		{"hosts.yaml", yamlSrc},
		{"hosts", yamlSrc},
		{"hosts.json", `{"all": {"hosts": {"web1": null}}}`},
		{"hosts.ini", iniSrc},
		{"hosts.txt", iniSrc},
		{"inventory", "# comment\nweb1\n"},
		{"inventory2", "# comment\n---\nall:\n  hosts: {web1: }\n"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			inv, err := loadBoth(t, dir, []string{path}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := names(inv.Hosts()); !reflect.DeepEqual(got, []string{"web1"}) {
				t.Errorf("hosts = %v", got)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

// ansible-core warns about a top-level group whose definition is not a
// mapping and skips it; a child group that is not a mapping makes it stop
// reading the file, which rollout refuses.
func TestYAMLScalarGroups(t *testing.T) {
	inv := mustYAML(t, "broken: just-a-string\nall:\n  children:\n    db:\n      hosts:\n        d1:\n")
	if got := names(inv.Hosts()); !reflect.DeepEqual(got, []string{"d1"}) {
		t.Errorf("hosts = %v", got)
	}
	w := inv.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "inv.yml:1: ") || !strings.Contains(w[0], `"broken"`) {
		t.Errorf("warnings = %q", w)
	}
	_, err := ParseYAML("inv.yml", []byte("all:\n  children:\n    web: [a]\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "inv.yml:3: ") || !strings.Contains(err.Error(), "expected a mapping or null") {
		t.Errorf("scalar child: err = %v", err)
	}
}

// YAML merge keys (kubespray's samples use them) merge mappings in every
// section: vars, hosts and children, as PyYAML does.
func TestYAMLMergeKeys(t *testing.T) {
	inv := mustYAML(t, `
base: &base
  ansible_user: deploy
  ansible_port: 2200
hostset: &hostset
  h1:
  h2:
    ansible_port: 2202
all:
  children:
    web:
      hosts:
        <<: *hostset
        h3:
      vars:
        <<: *base
        ansible_user: web
`)
	if got := names(inv.Hosts()); !reflect.DeepEqual(got, []string{"h1", "h2", "h3"}) {
		t.Fatalf("hosts = %v (a merge key must not become a host)", got)
	}
	if inv.Host("<<") != nil {
		t.Fatal("host << exists")
	}
	h1, h2 := inv.Host("h1"), inv.Host("h2")
	if h1.User != "web" || h1.Port != 2200 || h2.Port != 2202 {
		t.Errorf("h1 = %+v, h2 = %+v", h1, h2)
	}
}

// Aliases used inside their own anchors are refused, not followed forever.
func TestYAMLRecursiveAliases(t *testing.T) {
	for _, src := range []string{
		"all:\n  vars: &h\n    a: 1\n    <<: *h\n",
		"all: &a\n  children:\n    g: *a\n",
		"all:\n  hosts: &h\n    x:\n      <<: *h\n",
	} {
		_, err := ParseYAML("c.yml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "alias") {
			t.Errorf("%q: err = %v", src, err)
		}
	}
}
