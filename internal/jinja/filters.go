package jinja

import (
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"gopkg.in/yaml.v3"

	"github.com/rollout-sh/rollout/internal/shell"
)

// ansibleFilters are Ansible's own filters that roles use most, written
// to give Ansible's output byte for byte on plain data (strings, numbers,
// booleans, null, lists and mappings with sorted keys), plus "default",
// replaced so that it applies to undefined values only, as in Jinja2 (a
// variable set to null is defined).
var ansibleFilters = map[string]exec.FilterFunction{
	"default":       filterDefault,
	"d":             filterDefault,
	"to_json":       filterToJSON,
	"to_nice_json":  filterToNiceJSON,
	"to_nice_yaml":  filterToNiceYAML,
	"regex_replace": filterRegexReplace,
	"regex_search":  filterRegexSearch,
	"b64encode":     filterB64Encode,
	"b64decode":     filterB64Decode,
	"bool":          filterBool,
	"mandatory":     filterMandatory,
	"ternary":       filterTernary,
	"basename":      filterBasename,
	"dirname":       filterDirname,
	"quote":         filterQuote,
}

func invalid(name string, err error) *exec.Value {
	return exec.AsValue(fmt.Errorf("filter %s: %w", name, err))
}

func filterDefault(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	var def *exec.Value = exec.AsValue("")
	var boolean bool
	if len(params.Args) > 0 {
		def = params.Args[0]
	}
	if len(params.Args) > 1 {
		boolean = params.Args[1].IsTrue()
	}
	if v, ok := params.KwArgs["boolean"]; ok {
		boolean = v.IsTrue()
	}
	if in.IsError() {
		return def
	}
	if boolean && !in.IsTrue() {
		return def
	}
	return in
}

func filterMandatory(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		msg := "mandatory variable not defined"
		if len(params.Args) > 0 {
			msg = params.Args[0].String()
		}
		return exec.AsValue(fmt.Errorf("%s", msg))
	}
	return in
}

// plain converts a gonja value to plain Go data (nil, bool, int64,
// float64, string, []any, map[string]any).
func plain(v *exec.Value) any {
	return normalize(v.Interface())
}

func normalize(v any) any {
	switch t := v.(type) {
	case nil, bool, string, float64, int64:
		return t
	case int:
		return int64(t)
	case int32:
		return int64(t)
	case uint64:
		return int64(t)
	case float32:
		return float64(t)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = normalize(x)
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = x
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = normalize(x)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = x
		}
		return out
	case *exec.Value:
		return plain(t)
	case exec.ValuesList:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = plain(x)
		}
		return out
	case *exec.Dict:
		out := make(map[string]any, len(t.Pairs))
		for _, p := range t.Pairs {
			out[stringify(plain(p.Key))] = plain(p.Value)
		}
		return out
	}
	return exec.AsValue(v).ToGoSimpleType(false)
}

// pyJSON writes v as Python's json.dumps does: ", " and ": " separators
// (or "," and ": " with an indent), keys sorted when sortKeys, non-ASCII
// escaped.
func pyJSON(b *strings.Builder, v any, indent, level int, sortKeys bool) {
	nl := func(l int) {
		if indent > 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*l))
		}
	}
	sep := ", "
	if indent > 0 {
		sep = ","
	}
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(t, 10))
	case float64:
		b.WriteString(pyFloat(t))
	case string:
		b.WriteString(pyJSONString(t))
	case []any:
		if len(t) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, x := range t {
			if i > 0 {
				b.WriteString(sep)
			}
			nl(level + 1)
			pyJSON(b, x, indent, level+1, sortKeys)
		}
		nl(level)
		b.WriteByte(']')
	case map[string]any:
		if len(t) == 0 {
			b.WriteString("{}")
			return
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys) // Go maps have no order: always sorted
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(sep)
			}
			nl(level + 1)
			b.WriteString(pyJSONString(k))
			b.WriteString(": ")
			pyJSON(b, t[k], indent, level+1, sortKeys)
		}
		nl(level)
		b.WriteByte('}')
	default:
		b.WriteString(pyJSONString(fmt.Sprint(t)))
	}
}

func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	case f == math.Trunc(f) && math.Abs(f) < 1e16:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// pyJSONString is json.dumps(s) with ensure_ascii=True.
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r <= 0xffff):
			fmt.Fprintf(&b, `\u%04x`, r)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func filterToJSON(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	var b strings.Builder
	pyJSON(&b, plain(in), 0, 0, false)
	return exec.AsValue(b.String())
}

func filterToNiceJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	return indented(in, params, func(b *strings.Builder, v any, indent int) { pyJSON(b, v, indent, 0, true) })
}

// pyYAML writes v as PyYAML's safe_dump(default_flow_style=False,
// allow_unicode=True, indent) does for plain data: block mappings with
// sorted keys, sequences not indented inside mappings, scalars plain when
// they can be and single-quoted otherwise. It ends with a newline.
func pyYAML(b *strings.Builder, v any, indent, col int, inSeq bool) {
	pad := func(n int) { b.WriteString(strings.Repeat(" ", n)) }
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			b.WriteString("{}\n")
			return
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 || !inSeq {
				pad(col)
			}
			b.WriteString(yamlScalar(k))
			b.WriteByte(':')
			writeYAMLValue(b, t[k], indent, col, false)
		}
	case []any:
		if len(t) == 0 {
			b.WriteString("[]\n")
			return
		}
		for i, x := range t {
			if i > 0 || !inSeq {
				pad(col)
			}
			b.WriteByte('-')
			if isCollection(x) {
				// PyYAML fills the dash out to the indent
				b.WriteString(strings.Repeat(" ", indent-1))
				pyYAML(b, x, indent, col+indent, true)
				continue
			}
			b.WriteByte(' ')
			b.WriteString(yamlScalar(x))
			b.WriteByte('\n')
		}
	default:
		b.WriteString(yamlScalar(t))
		b.WriteByte('\n')
	}
}

func isCollection(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		return len(t) > 0
	case []any:
		return len(t) > 0
	}
	return false
}

// writeYAMLValue writes the value of a mapping key written at col.
func writeYAMLValue(b *strings.Builder, v any, indent, col int, _ bool) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteByte('\n')
		pyYAML(b, t, indent, col+indent, false)
	case []any:
		if len(t) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteByte('\n')
		pyYAML(b, t, indent, col, false)
	default:
		b.WriteByte(' ')
		b.WriteString(yamlScalar(t))
		b.WriteByte('\n')
	}
}

// yamlScalar formats a scalar as PyYAML does.
func yamlScalar(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		if t {
			return "true"
		}
		return "false"
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		return pyFloat(t)
	case string:
		return yamlString(t)
	}
	return yamlString(fmt.Sprint(v))
}

var yamlPlainUnsafe = regexp.MustCompile(`^(?:[-?:,\[\]{}#&*!|>'"%@` + "`" + `]|.*(?:: | #)|.*[: ]$|\s)`)

// yamlString is a string scalar: plain when it reads back as the same
// string, single-quoted otherwise, double-quoted when it holds control
// characters.
func yamlString(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return pyJSONString(s)
		}
	}
	if !yamlPlainUnsafe.MatchString(s) && !strings.ContainsAny(s, "\t") && !yaml11Special(s) {
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte("k: "+s), &m); err == nil {
			if str, ok := m["k"].(string); ok && str == s {
				return s
			}
		}
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// yaml11Special reports strings that YAML 1.1 (PyYAML) reads as something
// else than a string, which yaml.v3 (YAML 1.2) reads as strings.
func yaml11Special(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "no", "on", "off", "true", "false", "null", "~":
		return true
	}
	if _, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64); err == nil {
		return true
	}
	return false
}

func filterToNiceYAML(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	return indented(in, params, func(b *strings.Builder, v any, indent int) { pyYAML(b, v, indent, 0, false) })
}

// indented runs a to_nice_* writer with the filter's indent (default 4).
func indented(in *exec.Value, params *exec.VarArgs, write func(*strings.Builder, any, int)) *exec.Value {
	if in.IsError() {
		return in
	}
	indent := 4
	if v, ok := params.KwArgs["indent"]; ok {
		indent = v.Integer()
	}
	var b strings.Builder
	write(&b, plain(in), indent)
	return exec.AsValue(b.String())
}

// pyReplacement converts a Python re.sub replacement (\1, \g<1>,
// \g<name>) to Go's (${1}, ${name}).
func pyReplacement(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$':
			b.WriteString("$$")
		case c == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i + 1
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			b.WriteString("${" + s[i+1:j] + "}")
			i = j - 1
		case c == '\\' && strings.HasPrefix(s[i+1:], "g<"):
			if end := strings.IndexByte(s[i:], '>'); end > 0 {
				b.WriteString("${" + s[i+3:i+end] + "}")
				i += end
			} else {
				b.WriteByte(c)
			}
		case c == '\\' && i+1 < len(s) && s[i+1] == 'n':
			b.WriteByte('\n')
			i++
		case c == '\\' && i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pyPattern adapts a Python regular expression to Go's syntax: named
// groups (?P<name>...) are the same; \Z becomes \z.
func pyPattern(p string, ignoreCase, multiline bool) (*regexp.Regexp, error) {
	p = strings.ReplaceAll(p, `\Z`, `\z`)
	flags := ""
	if ignoreCase {
		flags += "i"
	}
	if multiline {
		flags += "m"
	}
	if flags != "" {
		p = "(?" + flags + ")" + p
	}
	return regexp.Compile(p)
}

// regexArgs reads a regex filter's pattern (first argument) with its
// ignorecase and multiline keywords.
func regexArgs(name string, params *exec.VarArgs) (*regexp.Regexp, *exec.Value) {
	if len(params.Args) < 1 {
		return nil, invalid(name, fmt.Errorf("expected a pattern"))
	}
	ic := params.KwArgs["ignorecase"] != nil && params.KwArgs["ignorecase"].IsTrue()
	ml := params.KwArgs["multiline"] != nil && params.KwArgs["multiline"].IsTrue()
	re, err := pyPattern(params.Args[0].String(), ic, ml)
	if err != nil {
		return nil, invalid(name, err)
	}
	return re, nil
}

func filterRegexReplace(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	re, bad := regexArgs("regex_replace", params)
	if bad != nil {
		return bad
	}
	repl := ""
	if len(params.Args) > 1 {
		repl = params.Args[1].String()
	}
	return exec.AsValue(re.ReplaceAllString(stringify(plain(in)), pyReplacement(repl)))
}

func filterRegexSearch(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	re, bad := regexArgs("regex_search", params)
	if bad != nil {
		return bad
	}
	s := stringify(plain(in))
	loc := re.FindStringIndex(s)
	if loc == nil {
		return exec.AsValue(nil)
	}
	return exec.AsValue(s[loc[0]:loc[1]])
}

func filterB64Encode(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	return exec.AsValue(base64.StdEncoding.EncodeToString([]byte(stringify(plain(in)))))
}

func filterB64Decode(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	out, err := base64.StdEncoding.DecodeString(stringify(plain(in)))
	if err != nil {
		return invalid("b64decode", err)
	}
	return exec.AsValue(string(out))
}

// filterBool is Ansible's bool filter: true for True, 1 and the strings
// yes, on, 1, true (any case); None stays None.
func filterBool(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	switch t := plain(in).(type) {
	case nil:
		return exec.AsValue(nil)
	case bool:
		return exec.AsValue(t)
	case int64:
		return exec.AsValue(t == 1)
	case float64:
		return exec.AsValue(t == 1)
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "yes", "on", "1", "true":
			return exec.AsValue(true)
		}
	}
	return exec.AsValue(false)
}

func filterTernary(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) < 2 {
		return invalid("ternary", fmt.Errorf("expected a true value and a false value"))
	}
	if in.IsNil() && len(params.Args) > 2 {
		return params.Args[2]
	}
	if in.IsTrue() {
		return params.Args[0]
	}
	return params.Args[1]
}

func filterBasename(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	s := stringify(plain(in))
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return exec.AsValue(s[i+1:])
	}
	return exec.AsValue(s)
}

func filterDirname(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	s := stringify(plain(in))
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return exec.AsValue("")
	}
	head := s[:i+1]
	if strings.Trim(head, "/") != "" {
		head = strings.TrimRight(head, "/")
	}
	return exec.AsValue(head)
}

func filterQuote(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	// Python's shlex.quote: the same safe characters as shell.Quote, but
	// a single quote inside becomes '"'"'.
	q := shell.Quote(stringify(plain(in)))
	return exec.AsValue(strings.ReplaceAll(q, `'\''`, `'"'"'`))
}
