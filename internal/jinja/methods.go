package jinja

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// gonjaStrMethods are the str methods gonja has; those whose arguments
// gonja takes differently from Python are replaced in strMethods.
var gonjaStrMethods = []string{"capitalize", "capwords", "casefold", "center", "count", "encode", "endswith",
	"expandtabs", "find", "format", "format_map", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
	"islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
	"partition", "removeprefix", "removesuffix", "rfind", "rjust", "rpartition", "rsplit", "splitlines",
	"startswith", "swapcase", "title", "upper", "zfill"}

// strMethods are Python's str methods as templates call them: gonja's,
// with strip, lstrip, rstrip, split and replace taking Python's
// arguments (no argument strips or splits on whitespace; replace's count
// is optional).
func strMethods() *exec.MethodSet[string] {
	m := map[string]exec.Method[string]{
		"strip":   stripMethod(strings.TrimFunc, strings.Trim),
		"lstrip":  stripMethod(strings.TrimLeftFunc, strings.TrimLeft),
		"rstrip":  stripMethod(strings.TrimRightFunc, strings.TrimRight),
		"split":   splitMethod,
		"replace": replaceMethod,
	}
	for _, name := range gonjaStrMethods {
		if fn, ok := builtins.Methods.Str.Get(name); ok {
			m[name] = fn
		}
	}
	return exec.NewMethodSet(m)
}

func args(name string, a *exec.VarArgs, most int) ([]*exec.Value, error) {
	if len(a.KwArgs) > 0 || len(a.Args) > most {
		return nil, fmt.Errorf("%s() takes at most %d positional arguments", name, most)
	}
	return a.Args, nil
}

func stripMethod(byFunc func(string, func(rune) bool) string, byChars func(string, string) string) exec.Method[string] {
	return func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		as, err := args("strip", a, 1)
		if err != nil {
			return nil, err
		}
		if len(as) == 0 || as[0].IsNil() {
			return byFunc(self, unicode.IsSpace), nil
		}
		return byChars(self, as[0].String()), nil
	}
}

func splitMethod(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
	as, err := args("split", a, 2)
	if err != nil {
		return nil, err
	}
	maxsplit := -1
	if len(as) > 1 {
		maxsplit = as[1].Integer()
	}
	var parts []string
	if len(as) == 0 || as[0].IsNil() {
		rest := strings.TrimLeftFunc(self, unicode.IsSpace)
		for rest != "" {
			if maxsplit >= 0 && len(parts) == maxsplit {
				parts = append(parts, rest)
				break
			}
			end := strings.IndexFunc(rest, unicode.IsSpace)
			if end < 0 {
				parts = append(parts, rest)
				break
			}
			parts = append(parts, rest[:end])
			rest = strings.TrimLeftFunc(rest[end:], unicode.IsSpace)
		}
	} else {
		sep := as[0].String()
		if sep == "" {
			return nil, fmt.Errorf("split: empty separator")
		}
		n := -1
		if maxsplit >= 0 {
			n = maxsplit + 1
		}
		parts = strings.SplitN(self, sep, n)
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func replaceMethod(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
	as, err := args("replace", a, 3)
	if err != nil {
		return nil, err
	}
	if len(as) < 2 {
		return nil, fmt.Errorf("replace() takes at least 2 arguments")
	}
	count := -1
	if len(as) == 3 {
		count = as[2].Integer()
	}
	return strings.Replace(self, as[0].String(), as[1].String(), count), nil
}
