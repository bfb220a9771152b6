package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nextCommands are the commands a `next:` line may start with: rollout's
// own, and the few other programs a hint names (the ssh line that shows why
// a host does not answer, git for the revisions, etcdctl for the backend).
var nextCommands = []string{"rollout ", "ssh ", "git ", "ETCDCTL_API=3 etcdctl ", "echo ", "socat "}

// nextSite is one place in the source that makes a next: text.
type nextSite struct {
	pos  token.Position
	lead string // the text the hint starts with, as far as it is literal
}

// TestEveryNextStartsWithACommand walks the source of every package for
// the places that make a `next:` text — the Next of a Refusal, the first
// argument of refuse, a safety rule's Fix, an assignment to next or .Next,
// what connectHint returns — and fails on any whose literal start is not a
// command: a `next:` line is pasted into a shell, so prose goes after the
// command, as a `#` comment.
func TestEveryNextStartsWithACommand(t *testing.T) {
	root := filepath.Join("..", "..")
	sites, consts := scanNextSites(t, root)
	checked := 0
	for _, s := range sites {
		lead, ok := s.lead, true
		if strings.HasPrefix(lead, "\x00") { // a constant's name: its value
			lead, ok = consts[lead[1:]]
		}
		if !ok || lead == "" || strings.HasPrefix(lead, "%") {
			continue // made elsewhere (a variable, a %s): checked where it is made
		}
		checked++
		if !startsWithCommand(lead) {
			t.Errorf("%s: next: starts with prose, not a command: %q", s.pos, lead)
		}
	}
	t.Logf("%d next: texts checked, %d made elsewhere", checked, len(sites)-checked)
	if checked < 40 {
		t.Fatalf("only %d next: texts found in the source: the walk misses them", checked)
	}
}

func startsWithCommand(s string) bool {
	for _, c := range nextCommands {
		if strings.HasPrefix(s, c) {
			return true
		}
	}
	return false
}

// scanNextSites parses every non-test Go file under root and returns the
// next: sites and the package-level string constants (by name).
func scanNextSites(t *testing.T, root string) ([]nextSite, map[string]string) {
	t.Helper()
	fset := token.NewFileSet()
	var sites []nextSite
	consts := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		add := func(e ast.Expr) {
			sites = append(sites, nextSite{fset.Position(e.Pos()), leadOf(e)})
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GenDecl:
				if n.Tok == token.CONST {
					for _, sp := range n.Specs {
						vs := sp.(*ast.ValueSpec)
						for i, name := range vs.Names {
							if i < len(vs.Values) {
								consts[name.Name] = leadOf(vs.Values[i])
							}
						}
					}
				}
			case *ast.KeyValueExpr:
				switch key, _ := n.Key.(*ast.Ident); {
				case key == nil:
				case key.Name == "Next":
					add(n.Value)
				case key.Name == "Fix":
					if cl, ok := n.Value.(*ast.CompositeLit); ok {
						for _, e := range cl.Elts {
							add(e)
						}
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "refuse" && len(n.Args) > 0 {
					add(n.Args[0])
				}
			case *ast.AssignStmt:
				if n.Tok != token.ASSIGN && n.Tok != token.DEFINE {
					break // next += "...": not where it starts
				}
				for i, l := range n.Lhs {
					if i >= len(n.Rhs) || len(n.Lhs) != len(n.Rhs) {
						break
					}
					if id, ok := l.(*ast.Ident); ok && id.Name == "next" {
						add(n.Rhs[i])
					}
					if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Next" {
						add(n.Rhs[i])
					}
				}
			case *ast.FuncDecl:
				if n.Name.Name == "connectHint" && n.Body != nil {
					ast.Inspect(n.Body, func(m ast.Node) bool {
						if r, ok := m.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
							add(r.Results[0])
						}
						return true
					})
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sites, consts
}

// leadOf is the literal text an expression starts with: a string, the left
// of a +, the format of fmt.Sprintf; "\x00NAME" for a constant NAME, ""
// when it starts with a variable.
func leadOf(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			if err == nil {
				return s
			}
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			if l := leadOf(e.X); l != "" {
				return l
			}
		}
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sprintf" && len(e.Args) > 0 {
			return leadOf(e.Args[0])
		}
	case *ast.Ident:
		return "\x00" + e.Name
	case *ast.SelectorExpr:
		return "\x00" + e.Sel.Name
	}
	return ""
}
