package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ErrNoMatch is wrapped by the error of a pattern (or limit) that selects
// no host.
var ErrNoMatch = errors.New("no hosts matched")

// ErrBadPattern is wrapped by the error of a pattern that cannot be parsed
// (an unclosed bracket, an invalid regular expression, an empty term).
var ErrBadPattern = errors.New("invalid host pattern")

// subscript is Ansible's PATTERN_WITH_SUBSCRIPT: name[3], name[-1],
// name[1:3], name[1:] (and the removed name[1-3]).
var subscript = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)

// term is one element of a pattern: web, &prod, !web3.
type term struct {
	op   byte // 0 (union), '&' (intersection) or '!' (exclusion)
	text string
}

// Select returns the hosts a host pattern selects, in inventory order.
//
// Patterns are Ansible's: all or *, a host name, a group name, web:db or
// web,db (union), web:&prod (intersection), web:!web3 (exclusion), globs
// (web*, web?), regular expressions (~web[0-9]+, anchored at the start as
// Python's re.match), and subscripts on any of these (web[0], web[-1],
// web[0:2] with an inclusive end, web[1:]). Unions are evaluated first,
// then intersections, then exclusions, whatever their order in the
// pattern. A pattern that selects nothing is an error wrapping ErrNoMatch;
// a malformed pattern is an error wrapping ErrBadPattern.
func (inv *Inventory) Select(pattern string) ([]*Host, error) {
	hosts, err := inv.evaluate(pattern)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w pattern %q (%s)", ErrNoMatch, pattern, inv.knownGroups())
	}
	return hosts, nil
}

// Limit returns the hosts pattern selects, narrowed to those the limit
// pattern also selects (like ansible-playbook --limit). An empty limit
// does not narrow. An empty result is an error wrapping ErrNoMatch that
// names both patterns.
func (inv *Inventory) Limit(pattern, limit string) ([]*Host, error) {
	hosts, err := inv.Select(pattern)
	if err != nil || strings.TrimSpace(limit) == "" {
		return hosts, err
	}
	allowed, err := inv.evaluate(limit)
	if err != nil {
		return nil, fmt.Errorf("limit: %w", err)
	}
	in := make(map[*Host]bool, len(allowed))
	for _, h := range allowed {
		in[h] = true
	}
	var out []*Host
	for _, h := range hosts {
		if in[h] {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		if len(allowed) == 0 {
			return nil, fmt.Errorf("%w limit %q (%s)", ErrNoMatch, limit, inv.knownGroups())
		}
		return nil, fmt.Errorf("%w pattern %q limited to %q: the limit selects %s, none of them in the pattern (%s)",
			ErrNoMatch, pattern, limit, NameList(allowed, 5, "and %d more"), inv.knownGroups())
	}
	return out, nil
}

// NameList names hosts for a message: the first max of them, then how
// many more (more is its format, "and %d more", say), comma-separated.
func NameList(hosts []*Host, max int, more string) string {
	names := make([]string, 0, max+1)
	for i, h := range hosts {
		if i == max {
			names = append(names, fmt.Sprintf(more, len(hosts)-max))
			break
		}
		names = append(names, h.Name)
	}
	return strings.Join(names, ", ")
}

func (inv *Inventory) knownGroups() string {
	groups := inv.GroupNames()
	if len(groups) == 0 {
		return "the inventory has no groups"
	}
	return "known groups: " + strings.Join(groups, ", ")
}

// evaluate returns the selected hosts (possibly none) in Ansible's order:
// the union terms in the order written, each term's hosts in its groups'
// order, each host once; then the intersections and exclusions filter
// that list (ansible-core's _evaluate_patterns).
func (inv *Inventory) evaluate(pattern string) ([]*Host, error) {
	terms, err := inv.splitPattern(pattern)
	if err != nil {
		return nil, err
	}
	var regular, and, not []term
	for _, t := range terms {
		switch t.op {
		case '&':
			and = append(and, t)
		case '!':
			not = append(not, t)
		default:
			regular = append(regular, t)
		}
	}
	if len(regular) == 0 {
		regular = []term{{text: groupAll}}
	}

	var out []*Host
	selected := map[*Host]bool{}
	for _, t := range regular {
		hosts, err := inv.matchTerm(t)
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			if !selected[h] {
				selected[h] = true
				out = append(out, h)
			}
		}
	}
	for _, t := range append(and, not...) {
		hosts, err := inv.matchTerm(t)
		if err != nil {
			return nil, err
		}
		set := make(map[*Host]bool, len(hosts))
		for _, h := range hosts {
			set[h] = true
		}
		kept := out[:0]
		for _, h := range out {
			if set[h] != (t.op == '!') {
				kept = append(kept, h)
			}
		}
		out = kept
	}
	return out, nil
}

func badPattern(pattern, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrBadPattern, pattern, fmt.Sprintf(format, args...))
}

// splitPattern splits a pattern on ',', ':' and white space, outside
// [brackets] (and, in ~regex terms, outside (groups) and {counts}). A
// pattern, or a comma-separated piece, that is exactly a host name is kept
// whole, so IPv6 addresses used as host names still work.
func (inv *Inventory) splitPattern(pattern string) ([]term, error) {
	whole := strings.TrimSpace(pattern)
	if whole == "" {
		return nil, badPattern(pattern, "expected a host or group name")
	}
	if _, ok := inv.byName[whole]; ok {
		return []term{{text: whole}}, nil
	}
	var pieces []string
	var cur strings.Builder
	var bracket, paren, brace int
	regex := false
	atStart := true
	flush := func() {
		if cur.Len() > 0 {
			pieces = append(pieces, cur.String())
		}
		cur.Reset()
		bracket, paren, brace, regex, atStart = 0, 0, 0, false, true
	}
	for i := 0; i < len(whole); i++ {
		c := whole[i]
		if atStart {
			if c == '&' || c == '!' {
				cur.WriteByte(c)
				continue
			}
			regex = c == '~'
			atStart = false
		}
		inside := bracket > 0 || paren > 0 || brace > 0
		switch {
		case !inside && (c == ',' || c == ':' || c == ' ' || c == '\t'):
			if c == ',' || cur.Len() > 0 {
				flush()
			}
			continue
		case c == '\\' && regex && i+1 < len(whole):
			cur.WriteByte(c)
			i++
			c = whole[i]
		case c == '[':
			if bracket == 0 {
				bracket++
			} else if !regex {
				return nil, badPattern(pattern, "expected ']' before another '['")
			}
		case c == ']':
			if bracket == 0 {
				return nil, badPattern(pattern, "unexpected ']' without '['")
			}
			bracket--
		case regex && bracket == 0 && c == '(':
			paren++
		case regex && bracket == 0 && c == ')' && paren > 0:
			paren--
		case regex && bracket == 0 && c == '{':
			brace++
		case regex && bracket == 0 && c == '}' && brace > 0:
			brace--
		}
		cur.WriteByte(c)
	}
	if bracket > 0 || paren > 0 || brace > 0 {
		return nil, badPattern(pattern, "expected a closing bracket")
	}
	flush()

	var terms []term
	for _, p := range pieces {
		t := term{text: p}
		if p[0] == '&' || p[0] == '!' {
			t.op, t.text = p[0], p[1:]
		}
		switch {
		case t.text == "":
			return nil, badPattern(pattern, "expected a host or group name after %q", string(t.op))
		case t.text[0] == '&' || t.text[0] == '!':
			return nil, badPattern(pattern, "expected a host or group name after %q, got %q", string(t.op), t.text)
		case t.text[0] == '@':
			return nil, badPattern(pattern, "limit files (%s) are not supported", t.text)
		case t.text == "~":
			return nil, badPattern(pattern, "expected a regular expression after '~'")
		}
		terms = append(terms, t)
	}
	if len(terms) == 0 {
		return nil, badPattern(pattern, "expected a host or group name")
	}
	return terms, nil
}

// matchTerm returns the hosts one term (without its operator) matches,
// in Ansible's order (ansible-core's _match_one_pattern): every matching
// group's hosts, groups in the order they were defined, then (when no
// group matched, or the term is a glob or a regular expression) every
// matching host in the order hosts were defined. A subscript applies to
// that list before repeats are dropped, as in ansible-core.
func (inv *Inventory) matchTerm(t term) ([]*Host, error) {
	if t.op == 0 {
		if h, ok := inv.byName[t.text]; ok {
			return []*Host{h}, nil
		}
	}
	expr, sub := t.text, []string(nil)
	if expr[0] != '~' {
		if m := subscript.FindStringSubmatch(expr); m != nil {
			if m[4] == "-" {
				return nil, badPattern(t.text, "expected [x:y]; the [x-y] subscript was removed from Ansible")
			}
			expr, sub = m[1], m
		}
	}

	var re *regexp.Regexp
	var err error
	if expr[0] == '~' {
		re, err = regexp.Compile(`^(?:` + expr[1:] + `)`)
		if err != nil {
			return nil, badPattern(t.text, "regular expression: %v", err)
		}
	} else if re, err = globRegexp(expr); err != nil {
		return nil, badPattern(t.text, "%v", err)
	}

	var hosts []*Host
	groupMatched := false
	for _, name := range inv.groupOrder {
		if re.MatchString(name) {
			groupMatched = true
			hosts = append(hosts, inv.members[name]...)
		}
	}
	if !groupMatched || expr[0] == '~' || strings.ContainsAny(expr, ".?*[") {
		for _, h := range inv.hostOrder {
			if re.MatchString(h.Name) {
				hosts = append(hosts, h)
			}
		}
	}
	if h := inv.implicit[expr]; len(hosts) == 0 && h != nil {
		hosts = []*Host{h}
	}
	if sub != nil {
		if hosts, err = applySubscript(t.text, hosts, sub); err != nil {
			return nil, err
		}
	}
	return dedupe(hosts), nil
}

func dedupe(hosts []*Host) []*Host {
	seen := make(map[*Host]bool, len(hosts))
	out := hosts[:0:0]
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// applySubscript applies [i], [-i], [i:j] (inclusive) or [i:] to hosts.
func applySubscript(pattern string, hosts []*Host, m []string) ([]*Host, error) {
	n := len(hosts)
	if m[2] != "" {
		i, err := strconv.Atoi(m[2])
		if err != nil {
			return nil, badPattern(pattern, "index %q is too large", m[2])
		}
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return nil, fmt.Errorf("%w pattern %q: index %s is out of range (%s has %d hosts)", ErrNoMatch, pattern, m[2], m[1], n)
		}
		return hosts[i : i+1], nil
	}
	start, err := strconv.Atoi(m[3])
	if err != nil {
		return nil, badPattern(pattern, "index %q is too large", m[3])
	}
	end := n - 1
	if m[5] != "" && strings.Trim(m[5], "0") == "" {
		// ansible-core treats an end of 0 as no end at all: x[i:0] is x[i]
		if start >= n {
			return nil, fmt.Errorf("%w pattern %q: index %d is out of range (%s has %d hosts)", ErrNoMatch, pattern, start, m[1], n)
		}
		return hosts[start : start+1], nil
	}
	if m[5] != "" {
		if end, err = strconv.Atoi(m[5]); err != nil {
			return nil, badPattern(pattern, "index %q is too large", m[5])
		}
		if end > n-1 {
			end = n - 1
		}
	}
	if start > end || start >= n {
		return nil, nil
	}
	return hosts[start : end+1], nil
}

// globRegexp translates a shell glob as Python's fnmatch.translate does:
// * any run, ? one character, [seq] and [!seq] classes; everything else
// literal; the whole name must match.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	g := []rune(glob) // names may be any Unicode: work on runes, not bytes
	for i := 0; i < len(g); i++ {
		c := g[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(g) && g[j] == '!' {
				j++
			}
			if j < len(g) && g[j] == ']' {
				j++
			}
			for j < len(g) && g[j] != ']' {
				j++
			}
			if j >= len(g) {
				b.WriteString(`\[`)
				continue
			}
			class := g[i+1 : j]
			i = j
			b.WriteByte('[')
			if len(class) > 0 && class[0] == '!' {
				b.WriteByte('^')
				class = class[1:]
			} else if len(class) > 0 && class[0] == '^' {
				b.WriteString(`\^`)
				class = class[1:]
			}
			for _, r := range class {
				if r == '\\' || r == '[' || r == ']' {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
			b.WriteByte(']')
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", glob, err)
	}
	return re, nil
}
