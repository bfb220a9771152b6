package jinja

import (
	"errors"
	"strings"
	"testing"
)

var testVars = map[string]any{
	"name":  "web1.example.com",
	"port":  int64(8080),
	"ratio": 1.5,
	"on":    true,
	"none":  nil,
	"list":  []any{"a", int64(1), true},
	"map":   map[string]any{"b": int64(2), "a": "x", "n": []any{"y"}},
	"yes":   "yes",
	"text":  "Hello World",
	"pw":    "s3cr3t",
}

// Expected outputs are ansible-core 2.14's for the same template and
// variables (ansible -m template); TestRenderMatchesAnsible in plan checks
// a template holding all of them against ansible itself.
func TestRenderFilters(t *testing.T) {
	tests := []struct{ src, want string }{
		{"{{ name }}:{{ port }}", "web1.example.com:8080"},
		{"{{ on }} {{ none }} {{ ratio }}", "True  1.5"},
		{"{{ list }}", "['a', 1, True]"},
		{"{{ missing | default('d') }} {{ none | default('d') }} {{ '' | default('e', true) }}", "d  e"},
		{"{{ list | join(',') }}", "a,1,True"},
		{"{{ map | to_json }}", `{"a": "x", "b": 2, "n": ["y"]}`},
		{"{{ map | to_nice_json }}", "{\n    \"a\": \"x\",\n    \"b\": 2,\n    \"n\": [\n        \"y\"\n    ]\n}"},
		{"{{ map | to_nice_yaml }}", "a: x\nb: 2\nn:\n- y\n"},
		{"{{ {'k': {'x': [1, {'z': 'yes', 'n': 'n'}]}} | to_nice_yaml }}", "k:\n    x:\n    - 1\n    -   n: n\n        z: 'yes'\n"},
		{"{{ ['a', 'on', 'x: y', '1.0', '', \"it's\"] | to_nice_yaml }}", "- a\n- 'on'\n- 'x: y'\n- '1.0'\n- ''\n- it's\n"},
		{"{{ {'b': {}, 'a': []} | to_nice_yaml }}", "a: []\nb: {}\n"},
		{"{{ 'é' | to_json }}", `"\u00e9"`},
		{"{{ name | regex_replace('\\\\.example\\\\.com$', '') }}", "web1"},
		{"{{ name | regex_replace('^(\\\\w+)\\\\..*', '\\\\1-x') }}", "web1-x"},
		{"{{ pw | b64encode }}", "czNjcjN0"},
		{"{{ 'czNjcjN0' | b64decode }}", "s3cr3t"},
		{"{{ yes | bool }} {{ 'off' | bool }} {{ 1 | bool }}", "True False True"},
		{"{{ '42' | int + 1 }}", "43"},
		{"{{ text | lower }} {{ text | upper }}", "hello world HELLO WORLD"},
		{"[{{ '  x  ' | trim }}]", "[x]"},
		{"{{ on | ternary('a', 'b') }}", "a"},
		{"{{ '/etc/app/app.conf' | basename }} {{ '/etc/app/app.conf' | dirname }}", "app.conf /etc/app"},
		{"{{ \"it's\" | quote }}", `'it'"'"'s'`},
		{"{% for x in list %}\n{{ x }}\n{% endfor %}\nend\n", "a\n1\nTrue\nend\n"},
		{"{% if port > 80 %}high{% else %}low{% endif %}", "high"},
		{"keep trailing newline\n", "keep trailing newline\n"},
		{"{{ map.a }} {{ map['b'] }}", "x 2"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			out, err := Render("t.j2", []byte(tt.src), testVars)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got %q, want %q", out, tt.want)
			}
		})
	}
}

// An undefined variable is an error naming the template and the line,
// never an empty string.
func TestRenderUndefinedIsAnError(t *testing.T) {
	tests := []struct{ src, want string }{
		{"line1\nport={{ nope }}\n", "t.j2:2: 'nope' is undefined"},
		{"a\nb\n{{ map.zz }}", "t.j2:3: "},
		{"{{ missing | mandatory }}", "t.j2"},
		{"{{ unclosed ", "t.j2:1"},
		{"{% include 'other.j2' %}", "include, import and extends are not supported"},
		{"a\n{{ port | to_yaml }}", "t.j2:2: no filter named 'to_yaml'"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			out, err := Render("t.j2", []byte(tt.src), testVars)
			if err == nil {
				t.Fatalf("no error, got %q", out)
			}
			if !errors.Is(err, ErrTemplate) {
				t.Errorf("%v does not wrap ErrTemplate", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestHasMarkers(t *testing.T) {
	if n := HasMarkers([]byte("a\nb {{ x }}\n")); n != 2 {
		t.Errorf("line = %d", n)
	}
	if n := HasMarkers([]byte("a\n{% if x %}\n")); n != 2 {
		t.Errorf("line = %d", n)
	}
	if n := HasMarkers([]byte("${x} { y }\n")); n != 0 {
		t.Errorf("line = %d", n)
	}
}
