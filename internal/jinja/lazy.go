package jinja

import (
	"github.com/nikolalohinski/gonja/v2/exec"
)

// Deferred is a value computed only when a template reads it, through a
// LazyMap. It is also an error: a template that reaches it any other way
// (iterating over the map's values) gets that error rather than a value.
type Deferred interface {
	error
	Value() any
}

// LazyMap is a mapping whose keys are known and whose values (Deferred)
// are computed when a template reads them by key (m.k or m['k']), as
// Ansible's hostvars are. Membership (k in m), length and key iteration
// see the keys.
type LazyMap map[string]any

// GetItem reads m[key], computing a Deferred value.
func (m LazyMap) GetItem(key any) (*exec.Value, bool) {
	k, ok := key.(string)
	if !ok {
		return exec.AsValue(nil), false
	}
	v, ok := m[k]
	if !ok {
		return exec.AsValue(nil), false
	}
	if d, ok := v.(Deferred); ok {
		v = d.Value()
	}
	return exec.ToValue(v), true
}

// GetAttribute reads m.name, as GetItem.
func (m LazyMap) GetAttribute(name string) (*exec.Value, bool) {
	return m.GetItem(name)
}
