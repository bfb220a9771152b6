package inventory

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// maxRangeHosts bounds what one host line may expand to, so a typo such
// as web[0:99999999] is an error instead of a memory blow-up.
const maxRangeHosts = 100000

var (
	iniSection   = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`)
	iniGroupName = regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
	bracketPort  = regexp.MustCompile(`^\[(.+)\]:(\d+)$`)
	hostPort     = regexp.MustCompile(`^((?:[^:\[\]]|\[[^\]]*\])*):(\d+)$`)
)

type pendingDecl struct {
	line    int
	state   string
	parents []string
}

// ParseINI parses an Ansible INI inventory. filename is used in error
// messages only.
//
// Values are read as Ansible's ini plugin reads them: host lines are split
// like a POSIX shell (quotes, backslashes, # comments), and every value,
// inline or in a [group:vars] section, is evaluated as a Python literal
// when it is one (int, float, True, False, None, a quoted string), and kept
// as the raw string otherwise.
func ParseINI(filename string, data []byte) (*Inventory, error) {
	b := newBuilder(filename)
	if err := b.parseINI(filename, data); err != nil {
		return nil, err
	}
	return b.finish()
}

// parseINI adds one INI file to the inventory being built.
func (b *builder) parseINI(filename string, data []byte) error {
	b.filename = filename
	pending := map[string]*pendingDecl{}
	var pendingOrder []string
	groupName, state := groupUngrouped, "hosts"

	fail := func(line int, format string, args ...any) error {
		return &parseError{file: filename, line: line, msg: fmt.Sprintf(format, args...)}
	}

	for i, raw := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if m := iniSection.FindStringSubmatch(line); m != nil {
			groupName, state = m[1], m[2]
			if state == "" {
				state = "hosts"
			}
			if state != "hosts" && state != "vars" && state != "children" {
				return fail(lineNo, "section [%s:%s] has unknown type %q: expected [group], [group:vars] or [group:children]", m[1], m[2], m[2])
			}
			if _, known := b.groups[groupName]; !known {
				if _, ok := pending[groupName]; state == "vars" && !ok {
					pending[groupName] = &pendingDecl{line: lineNo, state: state}
					pendingOrder = append(pendingOrder, groupName)
				}
				b.group(groupName)
			}
			if p, ok := pending[groupName]; ok && state != "vars" {
				if p.state == "children" {
					for _, parent := range p.parents {
						if err := b.addChild(parent, groupName); err != nil {
							return fail(p.line, "%v", err)
						}
					}
				}
				delete(pending, groupName)
			}
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			return fail(lineNo, "invalid section %q: expected [group], [group:vars] or [group:children] with no spaces", line)
		}

		switch state {
		case "hosts":
			names, port, vars, err := parseHostLine(line)
			if err != nil {
				return fail(lineNo, "%v", err)
			}
			for _, name := range names {
				h := b.addHost(name, groupName)
				if port > 0 {
					h.vars["ansible_port"] = int64(port)
				}
				for _, kv := range vars {
					h.set(kv.key, kv.value, b.at(lineNo))
				}
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return fail(lineNo, "expected key=value in [%s:vars], got %q", groupName, line)
			}
			if err := b.setGroupVar(groupName, k, parseValue(strings.TrimSpace(v)), lineNo); err != nil {
				return fail(lineNo, "%v", err)
			}
		case "children":
			m := iniGroupName.FindStringSubmatch(line)
			if m == nil {
				return fail(lineNo, "expected a group name in [%s:children], got %q", groupName, line)
			}
			child := m[1]
			if _, known := b.groups[child]; known {
				if err := b.addChild(groupName, child); err != nil {
					return fail(lineNo, "%v", err)
				}
				continue
			}
			if p, ok := pending[child]; ok {
				p.parents = append(p.parents, groupName)
			} else {
				pending[child] = &pendingDecl{line: lineNo, state: "children", parents: []string{groupName}}
				pendingOrder = append(pendingOrder, child)
			}
		}
	}
	for _, name := range pendingOrder {
		p, ok := pending[name]
		if !ok {
			continue
		}
		if p.state == "vars" {
			return fail(p.line, "section [%s:vars] is for group %q, which is never defined: expected a [%s] or [%s:children] section", name, name, name, name)
		}
		return fail(p.line, "section [%s:children] includes group %q, which is never defined: expected a [%s] or [%s:children] section", p.parents[len(p.parents)-1], name, name, name)
	}
	return nil
}

type keyValue struct {
	key   string
	value any
}

// parseHostLine reads "pattern[:port] key=value ...".
func parseHostLine(line string) (names []string, port int, vars []keyValue, err error) {
	tokens, err := shellSplit(line)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("host line: %w", err)
	}
	if len(tokens) == 0 {
		return nil, 0, nil, fmt.Errorf("expected a host name, got only a comment")
	}
	names, port, err = expandHostPattern(tokens[0])
	if err != nil {
		return nil, 0, nil, err
	}
	for _, t := range tokens[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return nil, 0, nil, fmt.Errorf("expected key=value host variable after %q, got %q", tokens[0], t)
		}
		if k == "" {
			return nil, 0, nil, fmt.Errorf("expected key=value host variable, got %q (empty key)", t)
		}
		vars = append(vars, keyValue{key: k, value: parseValue(v)})
	}
	return names, port, vars, nil
}

// expandHostPattern splits an optional :port off a host pattern and
// expands its [x:y] ranges.
func expandHostPattern(pattern string) ([]string, int, error) {
	host, port := pattern, 0
	m := bracketPort.FindStringSubmatch(pattern)
	if m == nil {
		m = hostPort.FindStringSubmatch(pattern)
	}
	if m != nil {
		n, err := strconv.Atoi(m[2])
		if err != nil || n < 1 || n > 65535 {
			return nil, 0, fmt.Errorf("host %q: port %q: expected a number from 1 to 65535", pattern, m[2])
		}
		host, port = m[1], n
	} else if strings.HasSuffix(pattern, ":") {
		return nil, 0, fmt.Errorf("host %q: expected a port number after ':'", pattern)
	}
	if host == "---" {
		return nil, 0, fmt.Errorf("expected an INI inventory, got %q (a YAML document marker; name the file .yml)", host)
	}
	if host == "" {
		return nil, 0, fmt.Errorf("host %q: expected a host name", pattern)
	}
	if !strings.Contains(host, "[") {
		return []string{host}, port, nil
	}
	names, err := expandRanges(host)
	if err != nil {
		return nil, 0, fmt.Errorf("host %q: %w", pattern, err)
	}
	return names, port, nil
}

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandRanges expands every [begin:end] or [begin:end:step] range in a
// host name, numeric (zero-padded when begin has a leading zero) or
// alphabetic (a-z then A-Z, as Ansible).
func expandRanges(name string) ([]string, error) {
	open := strings.IndexByte(name, '[')
	if open < 0 {
		return []string{name}, nil
	}
	closing := strings.IndexByte(name[open:], ']')
	if closing < 0 {
		return nil, fmt.Errorf("expected ']' to close the host range")
	}
	head, spec, tail := name[:open], name[open+1:open+closing], name[open+closing+1:]
	bounds := strings.Split(spec, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return nil, fmt.Errorf("host range [%s]: expected [begin:end] or [begin:end:step]", spec)
	}
	beg, end, step := bounds[0], bounds[1], 1
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("host range [%s]: expected an end value", spec)
	}
	if len(bounds) == 3 {
		n, err := strconv.Atoi(bounds[2])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("host range [%s]: expected a positive step, got %q", spec, bounds[2])
		}
		step = n
	}

	var seq []string
	bi, ei := strings.Index(asciiLetters, beg), strings.Index(asciiLetters, end)
	switch {
	case len(beg) == 1 && len(end) == 1 && bi >= 0 && ei >= 0:
		if bi > ei {
			return nil, fmt.Errorf("host range [%s]: expected begin <= end", spec)
		}
		for i := bi; i <= ei; i += step {
			seq = append(seq, asciiLetters[i:i+1])
		}
	default:
		b, errB := strconv.Atoi(beg)
		e, errE := strconv.Atoi(end)
		if errB != nil || errE != nil || b < 0 || e < 0 {
			return nil, fmt.Errorf("host range [%s]: expected two numbers or two letters", spec)
		}
		if b > e {
			return nil, fmt.Errorf("host range [%s]: expected begin <= end", spec)
		}
		width := 0
		if len(beg) > 1 && beg[0] == '0' {
			if len(beg) != len(end) {
				return nil, fmt.Errorf("host range [%s]: expected begin and end of equal width when zero-padded", spec)
			}
			width = len(beg)
		}
		if (e-b)/step+1 > maxRangeHosts {
			return nil, fmt.Errorf("host range [%s]: expands to more than %d hosts", spec, maxRangeHosts)
		}
		for i := b; i <= e; i += step {
			seq = append(seq, fmt.Sprintf("%0*d", width, i))
		}
	}

	var out []string
	for _, s := range seq {
		more, err := expandRanges(head + s + tail)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
		if len(out) > maxRangeHosts {
			return nil, fmt.Errorf("host ranges expand to more than %d hosts", maxRangeHosts)
		}
	}
	return out, nil
}

// shellSplit splits a line as Python's shlex.split(line, comments=True):
// whitespace separates words, single quotes are literal, double quotes
// allow \" and \\, a backslash outside quotes escapes the next character,
// and # outside quotes starts a comment.
func shellSplit(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		quote   byte
		escaped bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			cur.WriteByte(c)
			escaped = false
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
				i++
				cur.WriteByte(s[i])
			default:
				cur.WriteByte(c)
			}
		case c == '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("expected a character after the trailing backslash")
			}
			escaped, inWord = true, true
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '#':
			if inWord {
				words = append(words, cur.String())
			}
			return words, nil
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("expected a closing %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

var (
	pyInt = regexp.MustCompile(`^(?:[1-9](?:_?[0-9])*|0(?:_?0)*|0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+)$`)
	// pointfloat or exponentfloat; digitpart is [0-9](_?[0-9])*
	pyFloat = regexp.MustCompile(`^(?:(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*|[0-9](?:_?[0-9])*\.)(?:[eE][+-]?[0-9](?:_?[0-9])*)?|[0-9](?:_?[0-9])*[eE][+-]?[0-9](?:_?[0-9])*)$`)
)

// parseValue evaluates an INI value as Ansible does with Python's
// ast.literal_eval: a number becomes int64 or float64; True, False and
// None become bool and nil; a quoted string literal becomes its contents.
// Anything else (including lists and dicts, which are not evaluated here)
// stays the raw string. A trailing # comment is ignored when the value is a
// literal, and kept as part of the string otherwise (as in Ansible).
func parseValue(raw string) any {
	s := strings.TrimLeft(raw, " \t")
	s = strings.TrimRight(stripPyComment(s), " \t\r\n")
	if v, ok := pyLiteral(s); ok {
		return v
	}
	return raw
}

func pyLiteral(s string) (any, bool) {
	switch s {
	case "True":
		return true, true
	case "False":
		return false, true
	case "None":
		return nil, true
	case "":
		return nil, false
	}
	if v, ok := pyString(s); ok {
		return v, true
	}
	body, neg := s, false
	if body[0] == '-' || body[0] == '+' {
		neg = body[0] == '-'
		body = strings.TrimLeft(body[1:], " \t")
	}
	if pyInt.MatchString(body) {
		n, err := strconv.ParseInt(strings.ReplaceAll(body, "_", ""), 0, 64)
		if err != nil {
			return nil, false
		}
		if neg {
			n = -n
		}
		return n, true
	}
	if pyFloat.MatchString(body) {
		f, err := strconv.ParseFloat(strings.ReplaceAll(body, "_", ""), 64)
		if err != nil {
			return nil, false
		}
		if neg {
			f = -f
		}
		return f, true
	}
	return nil, false
}

// stripPyComment removes a # comment that is outside a quoted string.
func stripPyComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case quote == 0 && c == '#':
			return s[:i]
		}
	}
	return s
}

// pyString decodes one Python string literal ('...' or "...", optionally
// with an r, u or b prefix).
func pyString(s string) (string, bool) {
	raw, i := false, 0
	for i < len(s) && i < 2 && strings.IndexByte("rRuUbB", s[i]) >= 0 {
		raw = raw || s[i] == 'r' || s[i] == 'R'
		i++
	}
	s = s[i:]
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return "", false
	}
	q := s[0]
	if strings.HasPrefix(s, strings.Repeat(string(q), 3)) {
		return "", false // triple-quoted strings are not evaluated
	}
	body := s[1 : len(s)-1]
	var out strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == q || c == '\n' {
			return "", false // an unescaped quote: not a single literal
		}
		if c != '\\' {
			out.WriteByte(c)
			continue
		}
		if i+1 == len(body) {
			return "", false
		}
		i++
		e := body[i]
		if raw {
			out.WriteByte('\\')
			out.WriteByte(e)
			continue
		}
		switch e {
		case '\\', '\'', '"':
			out.WriteByte(e)
		case 'n':
			out.WriteByte('\n')
		case 't':
			out.WriteByte('\t')
		case 'r':
			out.WriteByte('\r')
		case 'a':
			out.WriteByte('\a')
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'v':
			out.WriteByte('\v')
		case '\n':
		default:
			out.WriteByte('\\')
			out.WriteByte(e)
		}
	}
	return out.String(), true
}
