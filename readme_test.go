package proxyauth_test

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readmeImports are the packages README.md's Go snippets may use, by the
// name they are used with.
var readmeImports = map[string]string{
	"context":       "context",
	"errors":        "errors",
	"fmt":           "fmt",
	"http":          "net/http",
	"log":           "log",
	"time":          "time",
	"proxyauth":     "github.com/proxyauth/proxyauth",
	"proxyauthtest": "github.com/proxyauth/proxyauth/proxyauthtest",
}

// readmePlaceholders declares what README.md's snippets take from the
// reader's own code.
const readmePlaceholders = `package readme

import (
	"context"

	"github.com/proxyauth/proxyauth"
)

// vault stands for the reader's secret store.
var vault struct {
	ProxyCredentials func(ctx context.Context, host string, rejected bool) (proxyauth.Credentials, error)
}
`

// TestREADMESnippets compiles every Go snippet of README.md, each as the
// body of a function returning an error, with the imports it uses, and
// runs go vet on them, and staticcheck when it is installed (.ci/run
// installs it). A snippet that gets a response must close its body.
func TestREADMESnippets(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package with the go command")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	snippets := goBlocks(string(readme))
	if len(snippets) == 0 {
		t.Fatal("README.md has no Go snippet")
	}

	// The package lives inside the module, so that it builds against this
	// version of it; a directory starting with "." is outside "./...".
	dir, err := os.MkdirTemp(".", ".readme-")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("cannot write in the module (read-only?): %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("placeholders.go", readmePlaceholders)
	for i, s := range snippets {
		src, err := wrapSnippet(i, s.code)
		if err != nil {
			t.Errorf("README.md:%d: %v", s.line, err)
			continue
		}
		write("snippet"+strconv.Itoa(i)+".go", src)
		if !gofmted(s.code) {
			t.Errorf("README.md:%d: the snippet is not formatted as gofmt would", s.line)
		}
		if strings.Contains(s.code, "resp, err :=") && !strings.Contains(s.code, "resp.Body.Close()") {
			t.Errorf("README.md:%d: the snippet gets a response and never closes its body", s.line)
		}
	}

	pkg := "./" + filepath.ToSlash(filepath.Clean(dir))
	run := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err,
				snippetLines(out.String(), dir, snippets))
		}
	}
	run("go", "vet", pkg)
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	sc := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "staticcheck")
	if _, err := os.Stat(sc); err == nil {
		run(sc, pkg)
	} else {
		t.Logf("staticcheck is not installed at %s: only go vet checked the snippets", sc)
	}
}

type snippet struct {
	line int // of the snippet's first line in README.md
	code string
}

// goBlocks returns the fenced ```go blocks of a Markdown text.
func goBlocks(md string) []snippet {
	var (
		out  []snippet
		cur  *snippet
		body []string
	)
	for i, line := range strings.Split(md, "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```go":
			cur, body = &snippet{line: i + 2}, nil
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.code = strings.Join(body, "\n")
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body = append(body, line)
		}
	}
	return out
}

// wrapSnippet returns a Go file of package readme whose function SnippetN
// has code as its body, importing the packages code uses.
func wrapSnippet(n int, code string) (string, error) {
	body := "func Snippet" + strconv.Itoa(n) + "() error {\n" + code + "\n\treturn nil\n}\n"
	f, err := parser.ParseFile(token.NewFileSet(), "", "package readme\n"+body, parser.SkipObjectResolution)
	if err != nil {
		return "", err
	}
	var used []string
	ast.Inspect(f, func(x ast.Node) bool {
		if sel, ok := x.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && readmeImports[id.Name] != "" && !slices.Contains(used, id.Name) {
				used = append(used, id.Name)
			}
		}
		return true
	})
	slices.Sort(used)
	var b strings.Builder
	b.WriteString("package readme\n\nimport (\n")
	for _, name := range used {
		b.WriteString("\t" + strconv.Quote(readmeImports[name]) + "\n")
	}
	b.WriteString(")\n\n" + body)
	return b.String(), nil
}

// gofmted reports whether code, as the body of a function, is formatted as
// gofmt would.
func gofmted(code string) bool {
	lines := strings.Split(code, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "\t" + l
		}
	}
	src := "package readme\n\nfunc f() {\n" + strings.Join(lines, "\n") + "\n}\n"
	out, err := format.Source([]byte(src))
	return err == nil && string(out) == src
}

// snippetLines rewrites the positions "snippetN.go:L:C" in the go
// command's output as README.md lines.
func snippetLines(out, dir string, snippets []snippet) string {
	re := regexp.MustCompile(`(?:\S*/)?snippet(\d+)\.go:(\d+)(:\d+)?`)
	return re.ReplaceAllStringFunc(out, func(m string) string {
		sub := re.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[1])
		l, _ := strconv.Atoi(sub[2])
		if n >= len(snippets) {
			return m
		}
		// The file has the package clause, a blank line, the import
		// block and a blank line before the function's first line.
		src, err := os.ReadFile(filepath.Join(dir, "snippet"+sub[1]+".go"))
		if err != nil {
			return m
		}
		head := strings.Index(string(src), "func Snippet")
		first := strings.Count(string(src[:head]), "\n") + 2 // the snippet's first line
		return "README.md:" + strconv.Itoa(snippets[n].line+l-first) + sub[3]
	})
}
