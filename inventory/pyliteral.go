package inventory

import (
	"strings"
)

// evalConcat is what ansible-core 2.14 makes of a rendered variable (its
// ansible_eval_concat, jinja2_native off): the rendered text, except that
// text that looks like a list, a dict or a boolean ("[...]", "{...}",
// "True", "False") becomes that value when it parses as a Python literal
// (with JSON's true, false and null accepted as names). Numbers stay text.
func evalConcat(s string) any {
	if s == "True" {
		return true
	}
	if s == "False" {
		return false
	}
	if !strings.HasPrefix(s, "[") && !strings.HasPrefix(s, "{") {
		return s
	}
	p := &pyParser{s: s}
	v, ok := p.value()
	if !ok {
		return s
	}
	p.space()
	if p.i != len(p.s) {
		return s
	}
	return v
}

// pyParser parses the Python literals ast.literal_eval accepts that
// templates produce: strings, numbers, True/False/None, lists, tuples
// (as lists), dicts with string keys.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyParser) value() (any, bool) {
	p.space()
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; c {
	case '[':
		return p.list('[', ']')
	case '(':
		return p.list('(', ')')
	case '{':
		return p.dict()
	case '\'', '"':
		return p.str()
	}
	// a scalar: up to the next delimiter
	j := p.i
	for j < len(p.s) && strings.IndexByte(",:]}) \t\r\n", p.s[j]) < 0 {
		j++
	}
	tok := p.s[p.i:j]
	p.i = j
	switch tok {
	case "true":
		return true, true
	case "false":
		return false, true
	case "null":
		return nil, true
	}
	if v, ok := pyLiteral(tok); ok {
		return v, true
	}
	return nil, false
}

func (p *pyParser) str() (any, bool) {
	q := p.s[p.i]
	j := p.i + 1
	for j < len(p.s) && p.s[j] != q {
		if p.s[j] == '\\' {
			j++
		}
		j++
	}
	if j >= len(p.s) {
		return nil, false
	}
	v, ok := pyString(p.s[p.i : j+1])
	p.i = j + 1
	return v, ok
}

func (p *pyParser) list(open, closing byte) (any, bool) {
	p.i++ // open
	out := []any{}
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == closing {
			p.i++
			return out, true
		}
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		p.space()
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case closing:
		default:
			return nil, false
		}
	}
}

func (p *pyParser) dict() (any, bool) {
	p.i++ // {
	out := map[string]any{}
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return out, true
		}
		k, ok := p.value()
		if !ok {
			return nil, false
		}
		key, isStr := k.(string)
		if !isStr {
			return nil, false // rollout's mappings have string keys
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, false // a set, or not a literal
		}
		p.i++
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		out[key] = v
		p.space()
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
		default:
			return nil, false
		}
	}
}
