package jinja

import (
	"errors"
	"fmt"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// unpackSet is Jinja2's "{% set a, b = expr %}": the value, a sequence,
// is unpacked into the names. Other forms of set are gonja's.
type unpackSet struct {
	loc   *tokens.Token
	names []string
	expr  nodes.Expression
}

func (s *unpackSet) Position() *tokens.Token { return s.loc }

func (s *unpackSet) String() string {
	return fmt.Sprintf("UnpackSet(Line=%d Col=%d)", s.loc.Line, s.loc.Col)
}

func (s *unpackSet) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	v := r.Eval(s.expr)
	if v.IsError() {
		return v
	}
	items, ok := plain(v).([]any)
	if !ok {
		return fmt.Errorf("cannot unpack %s into %d names", pyRepr(plain(v)), len(s.names))
	}
	if len(items) != len(s.names) {
		return fmt.Errorf("cannot unpack %d values into %d names", len(items), len(s.names))
	}
	for i, name := range s.names {
		r.Environment.Context.Set(name, items[i])
	}
	return nil
}

// setWithUnpacking parses "set a, b = expr" itself and hands every other
// set statement to gonja's parser.
func setWithUnpacking(builtin parser.ControlStructureParser) parser.ControlStructureParser {
	return func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		if args.Current(tokens.Name) == nil || args.Peek(tokens.Comma) == nil {
			return builtin(p, args)
		}
		s := &unpackSet{loc: p.Current()}
		for {
			name := args.Match(tokens.Name)
			if name == nil {
				return nil, errors.New("set: expected a name to unpack into")
			}
			s.names = append(s.names, name.Val)
			if args.Match(tokens.Comma) == nil {
				break
			}
		}
		if args.Match(tokens.Assign) == nil {
			return nil, errors.New("set: expected '=' after the names to unpack into")
		}
		expr, err := args.ParseExpression()
		if err != nil {
			return nil, err
		}
		if !args.End() {
			return nil, fmt.Errorf("set: unexpected %q after the value", args.Current().Val)
		}
		s.expr = expr
		return s, nil
	}
}
