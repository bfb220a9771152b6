package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	good := "# demo\nversion = 2\nmessage = \"hello from web1\"\nlisten = 127.0.0.1:8080\n" +
		"fail_healthz = true\nexit_after = 1s\nstart_delay = 250ms\nslow_ms = 40\n"
	c, err := ParseConfig("app.conf", []byte(good))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := Config{Version: "2", Message: "hello from web1", Listen: "127.0.0.1:8080",
		FailHealthz: true, ExitAfter: time.Second, StartDelay: 250 * time.Millisecond, SlowMS: 40}
	if *c != want {
		t.Errorf("got %+v, want %+v", *c, want)
	}
}

func TestParseConfigProblems(t *testing.T) {
	const base = "version = 1\nlisten = 127.0.0.1:80\n"
	tests := []struct {
		name, in string
		want     []string // each must appear, in order, one per problem
	}{
		{"unknown key", base + "colour = blue\n", []string{`app.conf:3: unknown key "colour"`}},
		{"invalid marker", base + "invalid = true\n", []string{"app.conf:3: invalid: this config is marked invalid"}},
		{"syntax", base + "just words\n", []string{"app.conf:3: syntax error"}},
		{"missing version", "listen = 127.0.0.1:80\n", []string{`app.conf:1: missing required key "version"`}},
		{"missing both", "# nothing\n\n", []string{`app.conf:2: missing required key "version"`, `app.conf:2: missing required key "listen"`}},
		{"empty file", "", []string{`app.conf:1: missing required key "version"`, `app.conf:1: missing required key "listen"`}},
		{"bad listen", "version = 1\nlisten = 8080\n", []string{"app.conf:2: listen: want host:port"}},
		{"bad port", "version = 1\nlisten = 127.0.0.1:99999\n", []string{"app.conf:2: listen: bad port"}},
		{"bad bool", base + "fail_healthz = maybe\n", []string{"app.conf:3: fail_healthz: want true or false"}},
		{"bad duration", base + "exit_after = soon\n", []string{"app.conf:3: exit_after: want a duration"}},
		{"negative slow", base + "slow_ms = -1\n", []string{"app.conf:3: slow_ms: want a non-negative integer"}},
		{"duplicate", base + "version = 2\n", []string{"app.conf:3: version: duplicate key (first set on line 1)"}},
		{"unterminated", base + "message = \"oops\n", []string{"app.conf:3: message: unterminated string"}},
		{"several", "version = 1\nlisten = x\nbogus = 1\n", []string{"app.conf:2: listen", `app.conf:3: unknown key "bogus"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig("app.conf", []byte(tt.in))
			if err == nil {
				t.Fatalf("ParseConfig accepted %q: %+v", tt.in, c)
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error %T is not Problems: %v", err, err)
			}
			if len(probs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(probs[i].String(), w) {
					t.Errorf("problem %d = %q, want prefix %q", i, probs[i], w)
				}
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("version = 1\nlisten = 127.0.0.1:80\nmessage = \"a\\\"b\"\n"))
	f.Add([]byte("= =\n\"\n#\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("f", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("want exactly one of config and error, got %v, %v", c, err)
		}
		if c != nil && (c.Version == "" || c.Listen == "") {
			t.Fatalf("accepted a config without version or listen: %+v", c)
		}
	})
}
