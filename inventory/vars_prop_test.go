package inventory

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/rollout-sh/rollout/internal/jinja"
)

// varModel is a set of generated variables and what they refer to.
//
// genVars builds n variables v0..v(n-1) of a host: strings,
// lists and dicts nested up to three deep whose strings are plain words
// or templates referring to other variables (possibly later ones, so with
// cycles), to an undefined name, or through hostvars. want[i] is what v_i
// must render to, or nil when it must fail (it reaches the undefined name
// or a cycle); every reference is unconditional, so the model is exact.
type varModel struct {
	vars  map[string]any
	refs  [][]int // variables each one's strings refer to
	undef []bool  // refers to an undefined name itself
}

func genVars(rng *rand.Rand, n int, acyclic bool) *varModel {
	m := &varModel{vars: map[string]any{}, refs: make([][]int, n), undef: make([]bool, n)}
	for i := 0; i < n; i++ {
		leaf := func() any {
			switch k := rng.Intn(8); {
			case k < 2:
				return fmt.Sprintf("w%d", rng.Intn(100))
			case k == 2 && !acyclic:
				m.undef[i] = true
				return "u{{ nope_" + fmt.Sprint(i) + " }}"
			default:
				var j int
				if acyclic {
					if i == 0 {
						return "plain"
					}
					j = rng.Intn(i)
				} else {
					j = rng.Intn(n)
				}
				m.refs[i] = append(m.refs[i], j)
				switch rng.Intn(3) {
				case 0:
					return fmt.Sprintf("<{{ v%d | string }}>", j)
				case 1:
					return fmt.Sprintf("{{ hostvars[inventory_hostname].v%d | string }}", j)
				}
				return fmt.Sprintf("a{%% if true %%}{{ v%d | string }}{%% endif %%}b", j)
			}
		}
		var tree func(depth int) any
		tree = func(depth int) any {
			if depth >= 3 || rng.Intn(3) == 0 {
				return leaf()
			}
			if rng.Intn(2) == 0 {
				l := make([]any, 1+rng.Intn(3))
				for k := range l {
					l[k] = tree(depth + 1)
				}
				return l
			}
			d := map[string]any{}
			for k := 0; k < 1+rng.Intn(3); k++ {
				d[fmt.Sprintf("k%d", k)] = tree(depth + 1)
			}
			return d
		}
		m.vars[fmt.Sprintf("v%d", i)] = tree(0)
	}
	return m
}

// fails reports whether v_i must fail: it reaches an undefined name or
// a cycle.
func (m *varModel) fails(i int) bool {
	state := map[int]int{} // 1 on the path, 2 done
	var walk func(int) bool
	walk = func(j int) bool {
		if state[j] == 1 {
			return true
		}
		if state[j] == 2 {
			return false
		}
		if m.undef[j] {
			return true
		}
		state[j] = 1
		for _, k := range m.refs[j] {
			if walk(k) {
				return true
			}
		}
		state[j] = 2
		return false
	}
	return walk(i)
}

// templated reports whether v holds a template anywhere.
func templated(v any) []string {
	var out []string
	switch t := v.(type) {
	case string:
		if jinja.HasSyntax(t) {
			out = append(out, t)
		}
	case []any:
		for _, x := range t {
			out = append(out, templated(x)...)
		}
	case map[string]any:
		for _, x := range t {
			out = append(out, templated(x)...)
		}
	}
	return out
}

// checkNoRawText renders templates reading every variable (directly, in
// a loop, through hostvars, through filters) and requires: a variable that
// must fail fails every template that reads it, with a *VarError naming
// it or the variable it failed through; one that must not renders; and no
// output ever holds Jinja2 syntax or a variable's raw template text.
func checkNoRawText(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	acyclic := rng.Intn(2) == 0
	n := 1 + rng.Intn(8)
	m := genVars(rng, n, acyclic)
	h := &Host{Name: "web1", Vars: m.vars}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("v%d", i)
		raws := templated(m.vars[name])
		for _, src := range []string{
			"{{ " + name + " }}",
			"{{ " + name + " | string }}",
			"{% for x in [" + name + "] %}{{ x }}{% endfor %}",
			"{{ hostvars['web1']." + name + " }}",
			"{{ [" + name + "] | join(',') }}",
			"{{ " + name + " | to_json }}",
		} {
			out, err := h.RenderTemplate("t.j2", []byte(src), nil)
			if err == nil {
				if m.fails(i) {
					t.Fatalf("seed %d: %s rendered %q; %s must fail (vars %#v)", seed, src, out, name, m.vars)
				}
				if jinja.HasSyntax(string(out)) {
					t.Fatalf("seed %d: %s rendered Jinja2 syntax: %q (vars %#v)", seed, src, out, m.vars)
				}
				for _, raw := range raws {
					if strings.Contains(string(out), raw) {
						t.Fatalf("seed %d: %s rendered the raw text %q of %s", seed, src, raw, name)
					}
				}
				continue
			}
			if !m.fails(i) {
				t.Fatalf("seed %d: %s failed: %v (vars %#v)", seed, src, err, m.vars)
			}
			var ve *VarError
			if !errors.As(err, &ve) || ve.Host != "web1" || !strings.HasPrefix(ve.Var, "v") {
				t.Fatalf("seed %d: %s: %v is not a *VarError naming a variable and the host", seed, src, err)
			}
		}
	}
}

func TestNoRawVariableTextReachesOutput(t *testing.T) {
	for seed := int64(0); seed < 400; seed++ {
		checkNoRawText(t, seed)
	}
}

func FuzzNoRawVariableText(f *testing.F) {
	for _, s := range []int64{0, 1, 7, 42, 1 << 40} {
		f.Add(s)
	}
	f.Fuzz(checkNoRawText)
}

// In an acyclic, fully defined set of variables, every variable renders
// to the value the model gives: each template string with its references
// replaced by their rendered text.
func TestVariablesRenderAsTheModelSays(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		n := 1 + rng.Intn(8)
		m := genVars(rng, n, true)
		h := &Host{Name: "web1", Vars: m.vars}
		got := h.TemplateVars()
		want := map[string]any{}
		var eval func(v any) any
		eval = func(v any) any {
			switch t := v.(type) {
			case string:
				s := t
				for j := n - 1; j >= 0; j-- {
					name := fmt.Sprintf("v%d", j)
					if !strings.Contains(s, name) {
						continue
					}
					text := jinjaString(want[name])
					s = strings.NewReplacer(
						"<{{ "+name+" | string }}>", "<"+text+">",
						"{{ hostvars[inventory_hostname]."+name+" | string }}", text,
						"a{% if true %}{{ "+name+" | string }}{% endif %}b", "a"+text+"b",
					).Replace(s)
				}
				return evalConcat(s)
			case []any:
				out := make([]any, len(t))
				for k, x := range t {
					out[k] = eval(x)
				}
				return out
			case map[string]any:
				out := map[string]any{}
				for k, x := range t {
					out[k] = eval(x)
				}
				return out
			}
			return v
		}
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("v%d", i)
			want[name] = eval(m.vars[name])
			if !reflect.DeepEqual(got[name], want[name]) {
				t.Fatalf("seed %d: %s = %#v, want %#v (vars %#v)", seed, name, got[name], want[name], m.vars)
			}
		}
	}
}

// jinjaString is how the template engine prints v with | string.
func jinjaString(v any) string {
	out, err := jinja.Render("s", []byte("{{ v | string }}"), map[string]any{"v": v})
	if err != nil {
		panic(err)
	}
	return string(out)
}
