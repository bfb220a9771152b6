package jinja

import (
	"errors"
	"regexp"

	"github.com/nikolalohinski/gonja/v2/exec"
)

func init() {
	ansibleTests["match"] = regexTest("match", true)
	ansibleTests["search"] = regexTest("search", false)
	ansibleTests["regex"] = regexTest("regex", false)
	ansibleTests["contains"] = testContains
	ansibleTests["subset"] = subsetTest(false)
	ansibleTests["issubset"] = subsetTest(false)
	ansibleTests["superset"] = subsetTest(true)
	ansibleTests["issuperset"] = subsetTest(true)
	ansibleTests["truthy"] = func(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) { return in.IsTrue(), nil }
	ansibleTests["falsy"] = func(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) { return !in.IsTrue(), nil }
}

// regexTest is ansible's match (anchored at the start, as Python's
// re.match), search and regex tests; arguments positional: pattern,
// ignorecase, multiline (and for regex, match_type).
func regexTest(name string, anchored bool) exec.TestFunction {
	return func(_ *exec.Context, in *exec.Value, params *exec.VarArgs) (bool, error) {
		if in.IsError() {
			return false, in
		}
		args := testArgs(params)
		if len(args) < 1 {
			return false, errors.New(name + ": expected a pattern")
		}
		flag := func(i int) bool { return len(args) > i && exec.AsValue(args[i]).IsTrue() }
		pattern := stringify(args[0])
		anchor := anchored
		if name == "regex" && len(args) > 3 {
			switch stringify(args[3]) {
			case "match":
				anchor = true
			case "search":
			default:
				return false, errors.New("regex: match_type must be match or search")
			}
		}
		if anchor {
			pattern = `\A(?:` + pattern + `)`
		}
		re, err := pyPattern(pattern, flag(1), flag(2))
		if err != nil {
			return false, err
		}
		return regexMatch(re, stringify(plain(in))), nil
	}
}

func regexMatch(re *regexp.Regexp, s string) bool { return re.MatchString(s) }

func testContains(_ *exec.Context, in *exec.Value, params *exec.VarArgs) (bool, error) {
	if in.IsError() {
		return false, in
	}
	list, ok := plain(in).([]any)
	if !ok || len(params.Args) != 1 {
		return false, errors.New("contains: expected a list and one value")
	}
	return contains(list, plain(params.Args[0])), nil
}

func subsetTest(super bool) exec.TestFunction {
	return func(_ *exec.Context, in *exec.Value, params *exec.VarArgs) (bool, error) {
		if in.IsError() {
			return false, in
		}
		a, ok1 := plain(in).([]any)
		if len(params.Args) != 1 {
			return false, errors.New("subset/superset: expected one list")
		}
		b, ok2 := plain(params.Args[0]).([]any)
		if !ok1 || !ok2 {
			return false, errors.New("subset/superset: both sides must be lists")
		}
		if super {
			a, b = b, a
		}
		for _, x := range a {
			if !contains(b, x) {
				return false, nil
			}
		}
		return true, nil
	}
}
