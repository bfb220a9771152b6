package inventory

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// keyLines maps each key of a YAML mapping node to the line it is on.
func keyLines(m *yaml.Node) map[string]int {
	out := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		out[m.Content[i].Value] = m.Content[i].Line
	}
	return out
}

// Layer is a file of variables that is not part of the inventory (a
// role's defaults/main.yml or vars/main.yml), with the file:line of each.
type Layer struct {
	Vars    map[string]any
	Origins map[string]string
}

// ParseVarsFile reads a YAML (or JSON) file of variables as group_vars
// files are read (the same types, YAML 1.1 booleans, local tags kept as
// text); name is the file's name in errors and origins. An empty file is
// an empty layer.
func ParseVarsFile(name string, data []byte) (Layer, error) {
	l := Layer{Vars: map[string]any{}, Origins: map[string]string{}}
	p := &yamlParser{b: &builder{filename: name}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return l, yamlError(name, err)
	}
	if len(doc.Content) == 0 {
		return l, nil
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return l, nil
	}
	if root.Kind != yaml.MappingNode {
		return l, &parseError{file: name, line: root.Line, msg: fmt.Sprintf("expected a mapping of variables (name: value), got %s", kindName(root))}
	}
	v, err := p.value(root)
	if err != nil {
		return l, err
	}
	l.Vars = v.(map[string]any)
	for k, line := range keyLines(root) {
		l.Origins[k] = fmt.Sprintf("%s:%d", name, line)
	}
	return l, nil
}
