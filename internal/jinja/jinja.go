// Package jinja renders Ansible-style Jinja2 templates with gonja
// (github.com/nikolalohinski/gonja/v2): undefined variables are errors,
// blocks are trimmed as Ansible's template module trims them, and the
// filters Ansible roles use most are registered next to Jinja2's own.
package jinja

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/logging"
	"github.com/nikolalohinski/gonja/v2/parser"
)

// Error is a template that does not parse or does not render: the
// template's name, the line (0 when unknown) and what went wrong.
type Error struct {
	Name string
	Line int
	Col  int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.Name, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Name, e.Msg)
}

// ErrTemplate is wrapped by every *Error.
var ErrTemplate = errors.New("jinja2 template")

// Unwrap makes errors.Is(err, ErrTemplate) hold.
func (e *Error) Unwrap() error { return ErrTemplate }

var (
	envOnce sync.Once
	env     *exec.Environment
)

func environment() *exec.Environment {
	envOnce.Do(func() {
		logging.SetEnabled(false)
		filters := exec.NewFilterSet(map[string]exec.FilterFunction{})
		filters.Update(builtins.Filters)
		for _, set := range []map[string]exec.FilterFunction{ansibleFilters, moreFilters} {
			for name, fn := range set {
				if filters.Exists(name) {
					_ = filters.Replace(name, fn)
				} else {
					_ = filters.Register(name, fn)
				}
			}
		}
		tests := exec.NewTestSet(map[string]exec.TestFunction{})
		tests.Update(builtins.Tests)
		for name, fn := range ansibleTests {
			if err := tests.Register(name, fn); err != nil {
				panic(err)
			}
		}
		statements := exec.NewControlStructureSet(map[string]parser.ControlStructureParser{})
		statements.Update(builtins.ControlStructures)
		if set, ok := statements.Get("set"); ok {
			_ = statements.Replace("set", setWithUnpacking(set))
		}
		methods := builtins.Methods
		methods.Str = strMethods()
		env = &exec.Environment{
			Context:           exec.EmptyContext().Update(builtins.GlobalFunctions),
			Filters:           filters,
			Tests:             tests,
			ControlStructures: statements,
			Methods:           methods,
		}
	})
	return env
}

// Render renders src, named name in errors, with vars in scope, as
// ansible-core's template module renders a template file, with Options'
// defaults (see RenderWith).
func Render(name string, src []byte, vars map[string]any) ([]byte, error) {
	return RenderWith(name, src, vars, Options{})
}

// RenderWith renders as ansible-core's template module does: undefined
// variables are errors (never empty strings); trim_blocks on and
// lstrip_blocks off unless the template's "#jinja2:" first line says
// otherwise; ansible_managed defined (opts); and the final newlines as
// Ansible leaves them: Jinja2 drops one (keep_trailing_newline off), then
// Ansible adds newlines until the output ends with as many as the
// template file. Includes and imports are refused: the template must be
// one file.
func RenderWith(name string, src []byte, vars map[string]any, opts Options) ([]byte, error) {
	data, s, want, err := prepare(string(src))
	if err != nil {
		return nil, &Error{Name: name, Line: 1, Msg: err.Error()}
	}
	managed, err := opts.managed()
	if err != nil {
		return nil, &Error{Name: name, Msg: err.Error()}
	}
	scope := make(map[string]any, len(vars)+1)
	for k, v := range vars {
		scope[k] = unordered(v)
	}
	// the template module's own variables win over the host's, as in ansible-core
	scope["ansible_managed"] = managed
	tpl, err := parse(name, s.config(), []byte(data))
	if err != nil {
		return nil, templateError(name, err)
	}
	var out bytes.Buffer
	if err := safeExecute(tpl, &out, exec.NewContext(scope)); err != nil {
		return nil, templateError(name, err)
	}
	if n := want - trailingNewlines(out.String()); n > 0 {
		out.WriteString(strings.Repeat(s.newlineSequence, n))
	}
	return out.Bytes(), nil
}

// parse parses the template, turning a panic of the parser into an error.
func parse(name string, cfg *config.Config, src []byte) (tpl *exec.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the template engine failed: %v", r)
		}
	}()
	return exec.NewTemplate(name, cfg, oneFile{name: name, src: src}, environment())
}

// safeExecute turns a panic inside the template engine into an error, so
// that a hostile template can never take the process down.
func safeExecute(tpl *exec.Template, w io.Writer, ctx *exec.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the template engine failed: %v", r)
		}
	}()
	return tpl.Execute(w, ctx)
}

// HasMarkers reports the first line holding a Jinja2 expression or
// statement ({{ ... }} or {% ... %}), or 0.
func HasMarkers(src []byte) int {
	for i, line := range bytes.Split(src, []byte("\n")) {
		if m := markerRE.Find(line); m != nil {
			return i + 1
		}
	}
	return 0
}

var markerRE = regexp.MustCompile(`\{\{.*\}\}|\{%.*%\}`)

var (
	lineRE     = regexp.MustCompile(`(?:at line|Line:?) (\d+)(?: Col:? (\d+))?`)
	noiseRE    = regexp.MustCompile(`^(?:unable to execute template: |failed to parse template '[^']*': )`)
	undefRE    = regexp.MustCompile(`Unable to evaluate name "([^"]+)"`)
	attrMissRE = regexp.MustCompile(`Unable to evaluate ([^:]+): attribute '([^']+)' not found`)
	noFilterRE = regexp.MustCompile(`filter '([^']+)' not found`)
)

// templateError turns a gonja error into an *Error with the line and a
// message in Jinja2's words ("'x' is undefined").
func templateError(name string, err error) *Error {
	msg := err.Error()
	e := &Error{Name: name}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			e.Col, _ = strconv.Atoi(m[2])
		}
	}
	switch {
	case undefRE.MatchString(msg):
		e.Msg = fmt.Sprintf("'%s' is undefined", undefRE.FindStringSubmatch(msg)[1])
	case attrMissRE.MatchString(msg):
		m := attrMissRE.FindStringSubmatch(msg)
		e.Msg = fmt.Sprintf("'%s' has no attribute '%s' (undefined)", m[1], m[2])
	case noFilterRE.MatchString(msg):
		e.Msg = fmt.Sprintf("no filter named '%s' (see docs/ansible.md for the filters rollout has)", noFilterRE.FindStringSubmatch(msg)[1])
	default:
		e.Msg = noiseRE.ReplaceAllString(msg, "")
	}
	return e
}

// oneFile is a loader that holds only the template being rendered.
type oneFile struct {
	name string
	src  []byte
}

func (l oneFile) Read(path string) (io.Reader, error) {
	if path != l.name {
		return nil, fmt.Errorf("%s: include, import and extends are not supported (the template must be one file), got %q", l.name, path)
	}
	return bytes.NewReader(l.src), nil
}

func (l oneFile) Resolve(path string) (string, error) { return path, nil }

func (l oneFile) Inherit(string) (loaders.Loader, error) { return l, nil }

// stringify is how Ansible prints a value: None is empty, True/False
// capitalised, everything else as Python's str() would.
func stringify(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	}
	return exec.AsValue(v).String()
}
