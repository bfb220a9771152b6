package jinja

import (
	"fmt"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// LookupFunc answers one term of Ansible's lookup(kind, term, ...): the
// value for term, or an error saying why there is none.
type LookupFunc func(kind, term string, kwargs map[string]any) (any, error)

// Lookup makes fn callable from a template as Ansible's lookup (list
// false: one term gives its value, several their values joined with
// commas, as wantlist=False does) or query (list true: always a list).
// Give it to Render under the names "lookup" and "query".
func Lookup(fn LookupFunc, list bool) any {
	return func(va *exec.VarArgs) (*exec.Value, error) {
		if len(va.Args) == 0 {
			return nil, fmt.Errorf("lookup needs the name of a lookup plugin, as lookup('file', 'path')")
		}
		kind := va.Args[0].String()
		kwargs := map[string]any{}
		for k, v := range va.KwArgs {
			kwargs[k] = plain(v)
		}
		asList := list
		if w, ok := kwargs["wantlist"].(bool); ok && w {
			asList = true
		}
		delete(kwargs, "wantlist")
		var out []any
		for _, a := range va.Args[1:] {
			terms := []any{plain(a)}
			if l, ok := terms[0].([]any); ok {
				terms = l
			}
			for _, term := range terms {
				v, err := fn(kind, stringify(term), kwargs)
				if err != nil {
					return nil, fmt.Errorf("lookup('%s', %q): %w", kind, stringify(term), err)
				}
				out = append(out, v)
			}
		}
		if asList {
			return exec.AsValue(out), nil
		}
		if len(out) == 1 {
			return exec.AsValue(out[0]), nil
		}
		parts := make([]string, len(out))
		for i, v := range out {
			parts[i] = stringify(v)
		}
		return exec.AsValue(strings.Join(parts, ",")), nil
	}
}
