package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is a parsed demo-app configuration file.
type Config struct {
	Version     string
	Message     string
	Listen      string
	FailHealthz bool
	ExitAfter   time.Duration // 0 = never
	StartDelay  time.Duration
	SlowMS      int
	// ErrorRate is the share of "/" requests answered 500 (0..1), a fault
	// that only real traffic reveals: /healthz stays healthy.
	ErrorRate float64
}

// Problem is one thing wrong with a config file, at a line.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// Problems is every problem found in a config file; it is the error
// returned by ParseConfig.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// LoadConfig reads and parses a config file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses `key = value` lines. Blank lines and lines starting with
// '#' are ignored; a value may be wrapped in double quotes. It reports every
// problem at once, as Problems.
func ParseConfig(file string, data []byte) (*Config, error) {
	var (
		c     Config
		probs Problems
		seen  = map[string]int{}
		line  int
	)
	add := func(n int, format string, args ...any) {
		probs = append(probs, Problem{File: file, Line: n, Msg: fmt.Sprintf(format, args...)})
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, val, ok := strings.Cut(text, "=")
		key = strings.TrimSpace(key)
		val = strings.TrimSpace(val)
		if !ok || key == "" {
			add(line, "syntax error: expected key = value, got %q", text)
			continue
		}
		if strings.ContainsAny(key, " \t\"") {
			add(line, "syntax error: bad key %q", key)
			continue
		}
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			uq, err := strconv.Unquote(val)
			if err != nil {
				add(line, "%s: bad quoted string: %v", key, err)
				continue
			}
			val = uq
		} else if strings.HasPrefix(val, `"`) {
			add(line, "%s: unterminated string", key)
			continue
		}
		if prev, dup := seen[key]; dup {
			add(line, "%s: duplicate key (first set on line %d)", key, prev)
			continue
		}
		seen[key] = line
		if err := c.set(key, val); err != nil {
			add(line, "%s", err)
		}
	}
	if err := sc.Err(); err != nil {
		add(line, "read: %v", err)
	}
	end := max(line, 1)
	if _, ok := seen["version"]; !ok {
		add(end, "missing required key \"version\"")
	}
	if _, ok := seen["listen"]; !ok {
		add(end, "missing required key \"listen\"")
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return &c, nil
}

func (c *Config) set(key, val string) error {
	switch key {
	case "version":
		if val == "" {
			return errors.New("version: must not be empty")
		}
		c.Version = val
	case "message":
		c.Message = val
	case "listen":
		host, port, err := net.SplitHostPort(val)
		if err != nil {
			return fmt.Errorf("listen: want host:port: %w", err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("listen: bad port %q", port)
		}
		if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			return fmt.Errorf("listen: bad host %q (want an IP address or localhost)", host)
		}
		c.Listen = val
	case "fail_healthz":
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("fail_healthz: want true or false, got %q", val)
		}
		c.FailHealthz = b
	case "exit_after", "start_delay":
		d, err := time.ParseDuration(val)
		if err != nil || d < 0 {
			return fmt.Errorf("%s: want a duration such as 1s or 500ms, got %q", key, val)
		}
		if key == "exit_after" {
			c.ExitAfter = d
		} else {
			c.StartDelay = d
		}
	case "slow_ms":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("slow_ms: want a non-negative integer, got %q", val)
		}
		c.SlowMS = n
	case "error_rate":
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("error_rate: want a share of requests from 0 to 1 such as 0.05, got %q", val)
		}
		c.ErrorRate = f
	case "invalid":
		return fmt.Errorf("invalid: this config is marked invalid (invalid = %s)", val)
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return nil
}
