package inventory

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// ParseYAML parses an Ansible YAML (or JSON) inventory: top-level groups
// (usually just "all"), each with optional "hosts" (a mapping of host
// pattern to variables or null), "vars" and "children" (groups, the same
// shape, recursively). A group may appear in several places; its
// definitions are merged. filename is used in error messages only.
func ParseYAML(filename string, data []byte) (*Inventory, error) {
	b := newBuilder(filename)
	if err := b.parseYAML(filename, data); err != nil {
		return nil, err
	}
	return b.finish()
}

// parseYAML adds one YAML (or JSON) inventory file to the inventory being
// built.
func (b *builder) parseYAML(filename string, data []byte) error {
	b.filename = filename
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return yamlError(filename, err)
	}
	if len(doc.Content) == 0 {
		return &parseError{file: filename, msg: "expected a mapping of groups (all: ...), got an empty document"}
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return &parseError{file: filename, line: root.Line, msg: fmt.Sprintf("expected a mapping of groups (all: ...), got %s", kindName(root))}
	}
	p := &yamlParser{b: b}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "plugin" {
			return p.errorf(root.Content[i], "this is an inventory plugin configuration (plugin: %s), not a YAML inventory; only static INI and YAML inventories are read", root.Content[i+1].Value)
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		if !isGroupDef(v) {
			p.b.warnf(k.Line, "skipping %q: expected a group (a mapping or null), got %s", k.Value, kindName(v))
			continue
		}
		if err := p.group(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

// yamlError is a YAML syntax error at file:line.
func yamlError(filename string, err error) error {
	if m := yamlErrLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &parseError{file: filename, line: line, msg: m[2]}
	}
	return &parseError{file: filename, msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

type yamlParser struct {
	b      *builder
	depth  int // nesting of groups, values and merges: aliases may loop
	visits int // nodes walked: aliases may multiply them
}

// maxYAMLDepth bounds nesting; only an alias that refers to itself (or a
// file nobody writes by hand) goes deeper.
const maxYAMLDepth = 200

// maxYAMLVisits bounds the values walked, so that aliases of aliases
// ("billion laughs") cannot make a small file take forever.
const maxYAMLVisits = 1 << 20

// enter counts one level of nesting; it fails on a recursive alias.
func (p *yamlParser) enter(n *yaml.Node) error {
	p.depth++
	p.visits++
	if p.visits > maxYAMLVisits {
		return p.errorf(n, "more than %d values once aliases are expanded", maxYAMLVisits)
	}
	if p.depth > maxYAMLDepth {
		return p.errorf(n, "nested more than %d levels deep: is an alias (*name) used inside its own anchor (&name)?", maxYAMLDepth)
	}
	return nil
}

func (p *yamlParser) errorf(n *yaml.Node, format string, args ...any) error {
	return &parseError{file: p.b.filename, line: n.Line, msg: fmt.Sprintf(format, args...)}
}

func isGroupDef(n *yaml.Node) bool {
	return n.Kind == yaml.MappingNode || isNull(n)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// group reads one group definition: null or a mapping with hosts, vars
// and children.
func (p *yamlParser) group(name string, n *yaml.Node) error {
	defer func() { p.depth-- }()
	if err := p.enter(n); err != nil {
		return err
	}
	p.b.group(name)
	if isNull(n) {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		section := k.Value
		switch section {
		case "hosts", "vars", "children":
		default:
			p.b.warnf(k.Line, "skipping unexpected key %q in group %q: expected hosts, vars or children", section, name)
			continue
		}
		if isNull(v) {
			continue
		}
		entries, err := p.sectionEntries(name, section, v)
		if err != nil {
			return err
		}
		for _, e := range entries {
			switch section {
			case "vars":
				val, err := p.value(e.val)
				if err != nil {
					return err
				}
				if err := p.b.setGroupVar(name, e.key.Value, val, e.key.Line); err != nil {
					return p.errorf(e.key, "%v", err)
				}
			case "children":
				if !isGroupDef(e.val) {
					// ansible-core gives up on the rest of the file here
					// ("is not a known host nor group") and keeps what it
					// read before: refused rather than half-read
					return p.errorf(e.key, "child group %q of %q: expected a mapping or null, got %s (ansible-core stops reading the file here and uses only the hosts before this line)", e.key.Value, name, kindName(e.val))
				}
				if err := p.group(e.key.Value, e.val); err != nil {
					return err
				}
				if err := p.b.addChild(name, e.key.Value); err != nil {
					return p.errorf(e.key, "%v", err)
				}
			case "hosts":
				if err := p.hosts(name, e.key, e.val); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

type yamlEntry struct {
	key, val *yaml.Node
}

// sectionEntries returns the key/value pairs of a hosts, vars or children
// section. A plain string is accepted as a mapping with one null entry, as
// Ansible does.
func (p *yamlParser) sectionEntries(group, section string, v *yaml.Node) ([]yamlEntry, error) {
	defer func() { p.depth-- }()
	if err := p.enter(v); err != nil {
		return nil, err
	}
	switch {
	case v.Kind == yaml.ScalarNode && section != "vars":
		return []yamlEntry{{key: v, val: &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: v.Line}}}, nil
	case v.Kind != yaml.MappingNode:
		return nil, p.errorf(v, "%s of group %q: expected a mapping, got %s", section, group, kindName(v))
	}
	// YAML merge keys (<<: *anchor, or a list of anchors) as PyYAML reads
	// them: merged entries first (of several anchors, the earlier one
	// wins), then the mapping's own, which win over merged ones.
	var merged, own []yamlEntry
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], resolve(v.Content[i+1])
		if k.Value != "<<" || k.Tag == "!!str" && k.Style != 0 {
			own = append(own, yamlEntry{key: k, val: val})
			continue
		}
		var sources []*yaml.Node
		switch val.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{val}
		case yaml.SequenceNode:
			for j := len(val.Content) - 1; j >= 0; j-- {
				sources = append(sources, resolve(val.Content[j]))
			}
		}
		if len(sources) == 0 {
			return nil, p.errorf(k, "merge key <<: expected an alias of a mapping (<<: *anchor) or a list of them, got %s", kindName(val))
		}
		for _, src := range sources {
			if src.Kind != yaml.MappingNode {
				return nil, p.errorf(k, "merge key <<: expected an alias of a mapping, got %s", kindName(src))
			}
			more, err := p.sectionEntries(group, section, src)
			if err != nil {
				return nil, err
			}
			merged = append(merged, more...)
		}
	}
	return append(merged, own...), nil
}

func (p *yamlParser) hosts(group string, key, val *yaml.Node) error {
	names, port, err := expandHostPattern(key.Value)
	if err != nil {
		return p.errorf(key, "%v", err)
	}
	var vars []yamlEntry
	if !isNull(val) {
		if val.Kind != yaml.MappingNode {
			return p.errorf(val, "host %q in group %q: expected a mapping of variables or null, got %s", key.Value, group, kindName(val))
		}
		if vars, err = p.sectionEntries(group, "vars", val); err != nil {
			return err
		}
	}
	values := make([]any, len(vars))
	for i, e := range vars {
		if values[i], err = p.value(e.val); err != nil {
			return err
		}
	}
	for _, name := range names {
		h := p.b.addHost(name, group)
		if port > 0 {
			h.vars["ansible_port"] = int64(port)
		}
		for i, e := range vars {
			h.set(e.key.Value, values[i], p.b.at(e.key.Line))
		}
	}
	return nil
}

// yaml11Bools are the YAML 1.1 booleans that Ansible's PyYAML loader
// accepts and yaml.v3 leaves as strings.
var yaml11Bools = map[string]bool{
	"yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// value converts a YAML node to string, int64, float64, bool, nil, []any
// or map[string]any.
func (p *yamlParser) value(n *yaml.Node) (any, error) {
	n = resolve(n)
	defer func() { p.depth-- }()
	if err := p.enter(n); err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Tag == "!!str" {
			if b, ok := yaml11Bools[n.Value]; ok {
				return b, nil
			}
		}
		if !strings.HasPrefix(n.Tag, "!!") {
			// Local tags such as !vault or !unsafe: keep the text.
			return n.Value, nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, p.errorf(n, "%v", err)
		}
		return normalize(v), nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := p.value(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		entries, err := p.sectionEntries("", "vars", n)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(entries))
		for _, e := range entries {
			v, err := p.value(e.val)
			if err != nil {
				return nil, err
			}
			out[e.key.Value] = v
		}
		return out, nil
	}
	return nil, p.errorf(n, "unexpected YAML %s", kindName(n))
}

func normalize(v any) any {
	switch t := v.(type) {
	case int:
		return int64(t)
	case uint64:
		if t > 1<<63-1 {
			return float64(t)
		}
		return int64(t)
	}
	return v
}

// resolve follows YAML aliases (*anchor) to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.DocumentNode:
		return "a document"
	}
	return "an alias"
}
