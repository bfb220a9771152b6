package inventory

import (
	"path"
	"strings"
)

// Redacted replaces the value of a variable whose name looks secret.
const Redacted = "<redacted>"

// secretKeys are the name patterns (case-insensitive, shell globs) whose
// values Redact hides.
var secretKeys = []string{"*password*", "*passwd*", "*secret*", "*token*", "*_key", "*private_key*"}

// SecretKey reports whether a variable name looks like it holds a secret.
// ansible_ssh_private_key_file names a file, not a key: it is shown.
func SecretKey(name string) bool {
	n := strings.ToLower(name)
	if strings.HasSuffix(n, "_file") || strings.HasSuffix(n, "_path") {
		return false
	}
	for _, p := range secretKeys {
		if ok, _ := path.Match(p, n); ok {
			return true
		}
	}
	return false
}

// Redact returns a copy of vars in which the values of secret-looking keys
// (at any depth) are replaced by Redacted, unless show.
func Redact(vars map[string]any, show bool) map[string]any {
	if vars == nil {
		return nil
	}
	out := make(map[string]any, len(vars))
	for k, v := range vars {
		if !show && SecretKey(k) {
			out[k] = Redacted
			continue
		}
		out[k] = redactValue(v, show)
	}
	return out
}

func redactValue(v any, show bool) any {
	switch t := v.(type) {
	case map[string]any:
		return Redact(t, show)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = redactValue(x, show)
		}
		return out
	}
	return v
}
