// Command api-sqlcheck checks that the pgbench scripts of bench/api.sh still
// run the SQL the API runs, so that the benchmark never compares the API with
// a stale copy of its own queries.
//
//	go run bench/api-sqlcheck.go bench/api-pgbench-*.sql
//	go run bench/api-sqlcheck.go -print services/api/internal/store rollup1hOneSQL
//
// Each script names, in one "-- mirrors:" comment per statement and in the
// statements' order, the package directory and Go constant the statement
// copies and what replaced each of the constant's bind parameters:
//
//	-- mirrors: services/api/internal/store readingsAscSQL $1=:any_device $6=NULL ...
//
// The constant's value (string literals and other constants of the package
// joined with +), with those replacements, must equal the statement up to
// whitespace. Exit status 1 names the first difference.
//
// With -print it writes the value of one such constant instead, for a
// benchmark program that must run the API's SQL (bench/api-floor.go).
package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-print" {
		if len(os.Args) != 4 {
			fmt.Fprintln(os.Stderr, "usage: api-sqlcheck -print PACKAGE_DIR CONSTANT")
			os.Exit(2)
		}
		v, err := constant(os.Args[2], os.Args[3])
		if err != nil {
			fmt.Fprintln(os.Stderr, "api-sqlcheck:", err)
			os.Exit(1)
		}
		fmt.Print(v)
		return
	}
	failed := false
	for _, path := range os.Args[1:] {
		if err := check(path); err != nil {
			fmt.Fprintf(os.Stderr, "api-sqlcheck: %s: %v\n", path, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

type mirror struct {
	dir, name string
	params    map[string]string // "$1" -> ":sid"
}

func check(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var mirrors []mirror
	var body []string
	for _, line := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "-- mirrors:"):
			f := strings.Fields(strings.TrimPrefix(t, "-- mirrors:"))
			if len(f) < 2 {
				return fmt.Errorf("malformed mirrors line %q", t)
			}
			m := mirror{dir: f[0], name: f[1], params: map[string]string{}}
			for _, kv := range f[2:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("malformed replacement %q", kv)
				}
				m.params[k] = v
			}
			mirrors = append(mirrors, m)
		case strings.HasPrefix(t, "--"), strings.HasPrefix(t, `\`):
		default:
			body = append(body, line)
		}
	}
	var stmts []string
	for _, s := range strings.Split(strings.Join(body, "\n"), ";") {
		if s = squash(s); s != "" {
			stmts = append(stmts, s)
		}
	}
	if len(stmts) != len(mirrors) {
		return fmt.Errorf("%d statements but %d mirrors lines", len(stmts), len(mirrors))
	}
	// The root is the checkout: this file's folder's parent.
	root := filepath.Dir(filepath.Dir(path))
	for i, m := range mirrors {
		want, err := constant(filepath.Join(root, m.dir), m.name)
		if err != nil {
			return err
		}
		var unmapped []string
		want = regexp.MustCompile(`\$[0-9]+`).ReplaceAllStringFunc(want, func(p string) string {
			if v, ok := m.params[p]; ok {
				return v
			}
			unmapped = append(unmapped, p)
			return p
		})
		if len(unmapped) > 0 {
			return fmt.Errorf("statement %d: no replacement for %s of %s", i+1, strings.Join(unmapped, ", "), m.name)
		}
		if want = squash(want); want != stmts[i] {
			n := 0
			for n < len(want) && n < len(stmts[i]) && want[n] == stmts[i][n] {
				n++
			}
			return fmt.Errorf("statement %d is not %s.%s any more; they differ from %q (script) / %q (Go)",
				i+1, filepath.Base(m.dir), m.name, excerpt(stmts[i], n), excerpt(want, n))
		}
	}
	return nil
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func excerpt(s string, at int) string { return s[at:min(len(s), at+60)] }

// constant evaluates the string constant name of the Go package in dir.
func constant(dir, name string) (string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	exprs := map[string]ast.Expr{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return "", err
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						exprs[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	var eval func(ast.Expr) (string, error)
	eval = func(e ast.Expr) (string, error) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				return strconv.Unquote(e.Value)
			}
		case *ast.Ident:
			if x, ok := exprs[e.Name]; ok {
				return eval(x)
			}
			return "", fmt.Errorf("%s: no constant %s", dir, e.Name)
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				a, err := eval(e.X)
				if err != nil {
					return "", err
				}
				b, err := eval(e.Y)
				return a + b, err
			}
		}
		return "", errors.New("not a string constant expression at " + fset.Position(e.Pos()).String())
	}
	x, ok := exprs[name]
	if !ok {
		return "", fmt.Errorf("%s: no constant %s", dir, name)
	}
	return eval(x)
}
