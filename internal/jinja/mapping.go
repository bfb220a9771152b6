package jinja

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Map is a mapping that keeps the order of its keys, as a Python dict
// loaded from YAML keeps the file's order (ansible-core iterates, writes
// to_json and to_nice_yaml in that order). The inventory's YAML loader
// should produce it (MapFromYAML) for every mapping in group_vars,
// host_vars and role defaults/vars, instead of map[string]any.
//
// Today the engine (gonja) sees mappings as Go maps and lists their keys
// sorted: Render passes a Map to templates as a plain map, so the order is
// kept only once the parser and evaluator are ours (docs/dependencies.md).
type Map struct {
	Keys   []string
	Values map[string]any
}

// Set adds or replaces key; a new key goes last.
func (m *Map) Set(key string, v any) {
	if m.Values == nil {
		m.Values = map[string]any{}
	}
	if _, ok := m.Values[key]; !ok {
		m.Keys = append(m.Keys, key)
	}
	m.Values[key] = v
}

// Get returns key's value.
func (m *Map) Get(key string) (any, bool) {
	v, ok := m.Values[key]
	return v, ok
}

// MapFromYAML decodes a YAML node into plain values with every mapping a
// *Map in the file's order (scalars as yaml.v3 decodes them: string,
// int, float64, bool, nil).
func MapFromYAML(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return MapFromYAML(n.Content[0])
	case yaml.AliasNode:
		return MapFromYAML(n.Alias)
	case yaml.MappingNode:
		m := &Map{Values: map[string]any{}}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: merge keys (<<) are not supported", k.Line)
			}
			val, err := MapFromYAML(v)
			if err != nil {
				return nil, err
			}
			m.Set(k.Value, val)
		}
		return m, nil
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := MapFromYAML(c)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// unordered turns the *Maps in v into map[string]any, for the engine: v
// itself, and inside *Maps and lists. It does not descend into plain
// maps (hostvars holds every host's variables: walking it for every
// render would cost hosts² per rollout), so the inventory must give a
// host's variables as *Map values, or as plain maps all the way down.
func unordered(v any) any {
	switch t := v.(type) {
	case *Map:
		out := make(map[string]any, len(t.Keys))
		for _, k := range t.Keys {
			out[k] = unordered(t.Values[k])
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = unordered(x)
		}
		return out
	}
	return v
}
