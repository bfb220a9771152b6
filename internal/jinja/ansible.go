package jinja

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// moreFilters are the rest of ansible-core 2.14's filters that templates
// use (docs/ansible.md lists every filter: those here, those refused and
// why).
var moreFilters = map[string]exec.FilterFunction{
	"comment":              filterComment,
	"hash":                 filterHash,
	"checksum":             filterChecksum,
	"sha1":                 filterChecksum,
	"md5":                  filterMD5,
	"union":                setFilter(setUnion),
	"intersect":            setFilter(setIntersect),
	"difference":           setFilter(setDifference),
	"symmetric_difference": setFilter(setSymmetric),
	"combine":              filterCombine,
	"dict2items":           filterDict2Items,
	"items2dict":           filterItems2Dict,
	"regex_findall":        filterRegexFindall,
	"regex_escape":         filterRegexEscape,
	"password_hash":        refused("password_hash", "a password hash is salted and its rounds depend on passlib being installed: the output is not reproducible from the plan; put the hash itself in a variable"),
	"random":               refused("random", "its output is not reproducible from the plan"),
	"shuffle":              refused("shuffle", "its output is not reproducible from the plan"),
}

// refused is a filter rollout has on purpose not: using it is an error
// with the reason.
func refused(name, why string) exec.FilterFunction {
	return func(_ *exec.Evaluator, _ *exec.Value, _ *exec.VarArgs) *exec.Value {
		return exec.AsValue(fmt.Errorf("filter %s is refused: %s", name, why))
	}
}

func kwString(params *exec.VarArgs, name, def string) string {
	if v, ok := params.KwArgs[name]; ok {
		return stringify(plain(v))
	}
	return def
}

// filterComment is ansible's comment filter: the text between a
// beginning and an end line, each line decorated, with prefix and
// postfix lines.
func filterComment(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	style := "plain"
	if len(params.Args) > 0 {
		style = params.Args[0].String()
	}
	if v, ok := params.KwArgs["style"]; ok {
		style = v.String()
	}
	var beginning, decoration, end string
	switch style {
	case "plain":
		decoration = "# "
	case "erlang":
		decoration = "% "
	case "c":
		decoration = "// "
	case "cblock":
		beginning, decoration, end = "/*", " * ", " */"
	case "xml":
		beginning, decoration, end = "<!--", " - ", "-->"
	default:
		return invalid("comment", fmt.Errorf("unknown style %q (plain, erlang, c, cblock, xml)", style))
	}
	decoration = kwString(params, "decoration", decoration)
	edge := strings.TrimRight(decoration, " \t\n\r\f\v")
	nl := kwString(params, "newline", "\n")
	beginning = kwString(params, "beginning", beginning)
	end = kwString(params, "end", end)
	prefix := kwString(params, "prefix", edge)
	postfix := kwString(params, "postfix", edge)
	prefixCount, postfixCount := 1, 1
	if v, ok := params.KwArgs["prefix_count"]; ok {
		prefixCount = v.Integer()
	}
	if v, ok := params.KwArgs["postfix_count"]; ok {
		postfixCount = v.Integer()
	}
	var b strings.Builder
	if beginning != "" {
		b.WriteString(beginning + nl)
	}
	if prefix != "" {
		line := prefix + nl
		if prefix == nl {
			line = nl
		}
		b.WriteString(strings.Repeat(line, max(prefixCount, 0)))
	}
	text := decoration + strings.ReplaceAll(stringify(plain(in)), nl, nl+decoration)
	text = strings.ReplaceAll(text, decoration+nl, strings.TrimRight(decoration, " \t\n\r\f\v")+nl)
	b.WriteString(text)
	for range max(postfixCount, 0) {
		b.WriteString(nl + postfix)
	}
	if end != "" {
		b.WriteString(nl + end)
	}
	return exec.AsValue(b.String())
}

var hashes = map[string]func() hash.Hash{
	"md5": md5.New, "sha1": sha1.New, "sha224": sha256.New224, "sha256": sha256.New,
	"sha384": sha512.New384, "sha512": sha512.New,
}

func filterHash(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	algo := "sha1"
	if len(params.Args) > 0 {
		algo = params.Args[0].String()
	}
	h, ok := hashes[algo]
	if !ok {
		return invalid("hash", fmt.Errorf("unknown hash type %q", algo))
	}
	w := h()
	w.Write([]byte(stringify(plain(in))))
	return exec.AsValue(hex.EncodeToString(w.Sum(nil)))
}

func filterChecksum(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	s := sha1.Sum([]byte(stringify(plain(in))))
	return exec.AsValue(hex.EncodeToString(s[:]))
}

func filterMD5(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	s := md5.Sum([]byte(stringify(plain(in))))
	return exec.AsValue(hex.EncodeToString(s[:]))
}

// pyEq is Python's == on plain data (1 == 1.0 == True).
func pyEq(a, b any) bool {
	num := func(v any) (float64, bool) {
		switch t := v.(type) {
		case bool:
			if t {
				return 1, true
			}
			return 0, true
		case int64:
			return float64(t), true
		case float64:
			return t, true
		}
		return 0, false
	}
	if x, ok := num(a); ok {
		y, ok := num(b)
		return ok && x == y
	}
	return reflect.DeepEqual(a, b)
}

func contains(list []any, x any) bool {
	for _, y := range list {
		if pyEq(x, y) {
			return true
		}
	}
	return false
}

func uniq(list []any) []any {
	out := []any{}
	for _, x := range list {
		if !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func setUnion(a, b []any) []any { return uniq(append(append([]any{}, a...), b...)) }

func setIntersect(a, b []any) []any {
	var out []any
	for _, x := range a {
		if contains(b, x) {
			out = append(out, x)
		}
	}
	return uniq(out)
}

func setDifference(a, b []any) []any {
	var out []any
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return uniq(out)
}

func setSymmetric(a, b []any) []any {
	both := setIntersect(a, b)
	out := []any{}
	for _, x := range setUnion(a, b) {
		if !contains(both, x) {
			out = append(out, x)
		}
	}
	return out
}

// setFilter makes a filter of a list operation. Ansible keeps the first
// list's order for lists; for two strings (hashable in Python) it uses
// Python sets, whose order is not reproducible: refused.
func setFilter(op func(a, b []any) []any) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		if len(params.Args) != 1 {
			return invalid("set operation", errors.New("expected one list"))
		}
		a, ok1 := plain(in).([]any)
		b, ok2 := plain(params.Args[0]).([]any)
		if !ok1 || !ok2 {
			return invalid("set operation", errors.New("both sides must be lists (on strings or other hashable values Ansible uses Python sets, whose order is not reproducible)"))
		}
		return exec.AsValue(op(a, b))
	}
}

func filterCombine(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	recursive := params.KwArgs["recursive"] != nil && params.KwArgs["recursive"].IsTrue()
	listMerge := kwString(params, "list_merge", "replace")
	switch listMerge {
	case "replace", "keep", "append", "prepend", "append_rp", "prepend_rp":
	default:
		return invalid("combine", fmt.Errorf("list_merge must be replace, keep, append, prepend, append_rp or prepend_rp, got %q", listMerge))
	}
	var dicts []map[string]any
	add := func(v any) error {
		switch t := v.(type) {
		case map[string]any:
			dicts = append(dicts, t)
		case []any:
			for _, x := range t {
				m, ok := x.(map[string]any)
				if !ok {
					return fmt.Errorf("expected mappings, got %s", pyRepr(x))
				}
				dicts = append(dicts, m)
			}
		default:
			return fmt.Errorf("expected mappings, got %s", pyRepr(v))
		}
		return nil
	}
	for _, v := range append([]*exec.Value{in}, params.Args...) {
		if v.IsError() {
			return v
		}
		if err := add(plain(v)); err != nil {
			return invalid("combine", err)
		}
	}
	if len(dicts) == 0 {
		return exec.AsValue(map[string]any{})
	}
	out := dicts[0]
	for _, d := range dicts[1:] {
		out = mergeHash(out, d, recursive, listMerge)
	}
	return exec.AsValue(out)
}

// mergeHash merges y into a copy of x as ansible's merge_hash does.
func mergeHash(x, y map[string]any, recursive bool, listMerge string) map[string]any {
	out := make(map[string]any, len(x)+len(y))
	for k, v := range x {
		out[k] = v
	}
	for k, yv := range y {
		xv, ok := out[k]
		if !ok {
			out[k] = yv
			continue
		}
		xm, xIsMap := xv.(map[string]any)
		ym, yIsMap := yv.(map[string]any)
		xl, xIsList := xv.([]any)
		yl, yIsList := yv.([]any)
		switch {
		case xIsMap && yIsMap && recursive:
			out[k] = mergeHash(xm, ym, recursive, listMerge)
		case xIsList && yIsList:
			switch listMerge {
			case "replace":
				out[k] = yl
			case "keep":
			case "append":
				out[k] = append(append([]any{}, xl...), yl...)
			case "prepend":
				out[k] = append(append([]any{}, yl...), xl...)
			case "append_rp":
				out[k] = append(without(xl, yl), yl...)
			case "prepend_rp":
				out[k] = append(append([]any{}, yl...), without(xl, yl)...)
			}
		default:
			out[k] = yv
		}
	}
	return out
}

func without(a, b []any) []any {
	out := []any{}
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// filterDict2Items lists a mapping as key/value items (keys sorted: see
// docs/ansible.md on mapping order).
func filterDict2Items(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	m, ok := plain(in).(map[string]any)
	if !ok {
		return invalid("dict2items", fmt.Errorf("requires a dictionary, got %s", pyRepr(plain(in))))
	}
	kn, vn := kwString(params, "key_name", "key"), kwString(params, "value_name", "value")
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, len(m))
	for _, k := range keys {
		out = append(out, map[string]any{kn: k, vn: m[k]})
	}
	return exec.AsValue(out)
}

func filterItems2Dict(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	list, ok := plain(in).([]any)
	if !ok {
		return invalid("items2dict", fmt.Errorf("requires a list, got %s", pyRepr(plain(in))))
	}
	kn, vn := kwString(params, "key_name", "key"), kwString(params, "value_name", "value")
	out := map[string]any{}
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return invalid("items2dict", fmt.Errorf("requires a list of mappings, got %s", pyRepr(x)))
		}
		k, ok1 := m[kn]
		v, ok2 := m[vn]
		if !ok1 || !ok2 {
			return invalid("items2dict", fmt.Errorf("an item has no %q or %q key", kn, vn))
		}
		out[stringify(k)] = v
	}
	return exec.AsValue(out)
}

func filterRegexFindall(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	re, bad := regexArgs("regex_findall", params)
	if bad != nil {
		return bad
	}
	out := []any{}
	for _, m := range re.FindAllStringSubmatch(stringify(plain(in)), -1) {
		switch len(m) {
		case 1:
			out = append(out, m[0])
		case 2:
			out = append(out, m[1])
		default:
			groups := make([]any, len(m)-1)
			for i, g := range m[1:] {
				groups[i] = g
			}
			out = append(out, groups)
		}
	}
	return exec.AsValue(out)
}

// filterRegexEscape is Python 3's re.escape: the characters special in
// a pattern, and whitespace, get a backslash.
func filterRegexEscape(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if t := kwString(params, "re_type", "python"); t != "python" {
		return invalid("regex_escape", fmt.Errorf("re_type %q is not supported (python only)", t))
	}
	var b strings.Builder
	for _, r := range stringify(plain(in)) {
		if strings.ContainsRune("()[]{}?*+-|^$\\.&~# \t\n\r\v\f", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return exec.AsValue(b.String())
}

// pyRepr is Python's repr of plain data, for messages.
func pyRepr(v any) string {
	switch t := v.(type) {
	case string:
		return "'" + t + "'"
	case nil:
		return "None"
	}
	return stringify(v)
}

// Tests: ansible-core's version test (and its old name version_compare).
var ansibleTests = map[string]exec.TestFunction{
	"version":         testVersion,
	"version_compare": testVersion,
}

// testArgs are a test's arguments: gonja parses "is t(a, b)" as one
// tuple argument, which is spread here.
func testArgs(params *exec.VarArgs) []any {
	var args []any
	for _, a := range params.Args {
		args = append(args, plain(a))
	}
	if len(args) == 1 {
		if t, ok := args[0].([]any); ok {
			return t
		}
	}
	return args
}

func testVersion(_ *exec.Context, in *exec.Value, params *exec.VarArgs) (bool, error) {
	if in.IsError() {
		return false, in
	}
	args := testArgs(params)
	if len(args) < 1 {
		return false, errors.New("version: expected a version to compare with")
	}
	value, other := stringify(plain(in)), stringify(args[0])
	op := "eq"
	if len(args) > 1 {
		op = stringify(args[1])
	}
	if len(args) > 2 && exec.AsValue(args[2]).IsTrue() {
		params.KwArgs["strict"] = exec.AsValue(true)
	}
	if len(args) > 3 && args[3] != nil {
		params.KwArgs["version_type"] = exec.AsValue(args[3])
	}
	if v, ok := params.KwArgs["operator"]; ok {
		op = v.String()
	}
	kind := "loose"
	if v, ok := params.KwArgs["strict"]; ok && v.IsTrue() {
		kind = "strict"
	}
	if v, ok := params.KwArgs["version_type"]; ok {
		if _, strict := params.KwArgs["strict"]; strict {
			return false, errors.New("version: cannot specify both 'strict' and 'version_type'")
		}
		kind = v.String()
	}
	if value == "" {
		return false, errors.New("version: input version value cannot be empty")
	}
	if other == "" {
		return false, errors.New("version parameter to compare against cannot be empty")
	}
	var cmp func(a, b string) (int, error)
	switch kind {
	case "loose":
		cmp = looseCompare
	case "strict":
		cmp = strictCompare
	case "semver", "semantic":
		cmp = semverCompare
	case "pep440":
		return false, errors.New("version: version_type 'pep440' is not supported")
	default:
		return false, fmt.Errorf("version: invalid version type (%s)", kind)
	}
	c, err := cmp(value, other)
	if err != nil {
		return false, fmt.Errorf("version: %w", err)
	}
	switch op {
	case "==", "=", "eq":
		return c == 0, nil
	case "<", "lt":
		return c < 0, nil
	case "<=", "le":
		return c <= 0, nil
	case ">", "gt":
		return c > 0, nil
	case ">=", "ge":
		return c >= 0, nil
	case "!=", "<>", "ne":
		return c != 0, nil
	}
	return false, fmt.Errorf("version: invalid operator type (%s)", op)
}

var looseRE = regexp.MustCompile(`\d+|[a-z]+|\.`)

// looseParts splits a version as LooseVersion does: runs of digits
// (numbers), runs of lowercase letters, and whatever lies between them,
// dots dropped.
func looseParts(s string) []any {
	var parts []any
	last := 0
	push := func(p string) {
		if p == "" || p == "." {
			return
		}
		if n, err := strconv.ParseInt(p, 10, 64); err == nil {
			parts = append(parts, n)
			return
		}
		parts = append(parts, p)
	}
	for _, loc := range looseRE.FindAllStringIndex(s, -1) {
		push(s[last:loc[0]])
		push(s[loc[0]:loc[1]])
		last = loc[1]
	}
	push(s[last:])
	return parts
}

func looseCompare(a, b string) (int, error) {
	x, y := looseParts(a), looseParts(b)
	for i := 0; i < len(x) && i < len(y); i++ {
		xi, xNum := x[i].(int64)
		yi, yNum := y[i].(int64)
		switch {
		case xNum && yNum:
			if xi != yi {
				return cmpInt(xi, yi), nil
			}
		case !xNum && !yNum:
			if c := strings.Compare(x[i].(string), y[i].(string)); c != 0 {
				return c, nil
			}
		default:
			return 0, fmt.Errorf("cannot compare %q with %q: a number and a string at the same place", a, b)
		}
	}
	return cmpInt(int64(len(x)), int64(len(y))), nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var strictRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?(?:([ab])(\d+))?$`)

func strictCompare(a, b string) (int, error) {
	type sv struct {
		n   [3]int64
		pre string
		pn  int64
	}
	parse := func(s string) (sv, error) {
		m := strictRE.FindStringSubmatch(s)
		if m == nil {
			return sv{}, fmt.Errorf("invalid version number '%s'", s)
		}
		var v sv
		for i := 0; i < 3; i++ {
			v.n[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
		v.pre = m[4]
		v.pn, _ = strconv.ParseInt(m[5], 10, 64)
		return v, nil
	}
	x, err := parse(a)
	if err != nil {
		return 0, err
	}
	y, err := parse(b)
	if err != nil {
		return 0, err
	}
	for i := 0; i < 3; i++ {
		if x.n[i] != y.n[i] {
			return cmpInt(x.n[i], y.n[i]), nil
		}
	}
	switch {
	case x.pre == "" && y.pre == "":
		return 0, nil
	case x.pre == "":
		return 1, nil
	case y.pre == "":
		return -1, nil
	}
	if c := strings.Compare(x.pre, y.pre); c != 0 {
		return c, nil
	}
	return cmpInt(x.pn, y.pn), nil
}

var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func semverCompare(a, b string) (int, error) {
	parse := func(s string) ([]string, error) {
		m := semverRE.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("invalid semantic version '%s'", s)
		}
		return m, nil
	}
	x, err := parse(a)
	if err != nil {
		return 0, err
	}
	y, err := parse(b)
	if err != nil {
		return 0, err
	}
	for i := 1; i <= 3; i++ {
		xi, _ := strconv.ParseInt(x[i], 10, 64)
		yi, _ := strconv.ParseInt(y[i], 10, 64)
		if xi != yi {
			return cmpInt(xi, yi), nil
		}
	}
	switch {
	case x[4] == "" && y[4] == "":
		return 0, nil
	case x[4] == "":
		return 1, nil
	case y[4] == "":
		return -1, nil
	}
	xp, yp := strings.Split(x[4], "."), strings.Split(y[4], ".")
	for i := 0; i < len(xp) && i < len(yp); i++ {
		xn, xe := strconv.ParseInt(xp[i], 10, 64)
		yn, ye := strconv.ParseInt(yp[i], 10, 64)
		switch {
		case xe == nil && ye == nil:
			if xn != yn {
				return cmpInt(xn, yn), nil
			}
		case xe == nil:
			return -1, nil
		case ye == nil:
			return 1, nil
		default:
			if c := strings.Compare(xp[i], yp[i]); c != 0 {
				return c, nil
			}
		}
	}
	return cmpInt(int64(len(xp)), int64(len(yp))), nil
}
