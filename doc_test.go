package proxyauth_test

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

// TestExportedNamesHaveDocComments checks that every exported name of every
// library package in the module, and every exported field and interface
// method of its exported types, has a doc comment. A comment at the end of
// the line does not count: it is not a sentence about the name.
func TestExportedNamesHaveDocComments(t *testing.T) {
	fset := token.NewFileSet()
	var missing []string
	report := func(pos token.Pos, what string) {
		p := fset.Position(pos)
		missing = append(missing, p.Filename+":"+strconv.Itoa(p.Line)+": "+what)
	}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" {
			return nil // a command's exported names are no API
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if !decl.Name.IsExported() || decl.Recv != nil && !exportedRecv(decl.Recv) {
					continue
				}
				if decl.Doc == nil {
					report(decl.Pos(), "func "+decl.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						if !spec.Name.IsExported() {
							continue
						}
						if spec.Doc == nil && decl.Doc == nil {
							report(spec.Pos(), "type "+spec.Name.Name)
						}
						checkFields(spec, report)
					case *ast.ValueSpec:
						for _, n := range spec.Names {
							if n.IsExported() && spec.Doc == nil && decl.Doc == nil {
								report(n.Pos(), n.Name)
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Errorf("no doc comment: %s", m)
	}
}

// checkFields reports the exported fields of a struct type, and the
// methods of an interface type, that have no doc comment.
func checkFields(spec *ast.TypeSpec, report func(token.Pos, string)) {
	var list *ast.FieldList
	switch ty := spec.Type.(type) {
	case *ast.StructType:
		list = ty.Fields
	case *ast.InterfaceType:
		list = ty.Methods
	default:
		return
	}
	for _, f := range list.List {
		for _, n := range f.Names {
			if n.IsExported() && f.Doc == nil {
				report(n.Pos(), spec.Name.Name+"."+n.Name)
			}
		}
	}
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(recv *ast.FieldList) bool {
	ty := recv.List[0].Type
	if star, ok := ty.(*ast.StarExpr); ok {
		ty = star.X
	}
	switch ty := ty.(type) {
	case *ast.IndexExpr:
		ty2, _ := ty.X.(*ast.Ident)
		return ty2 != nil && ty2.IsExported()
	case *ast.Ident:
		return ty.IsExported()
	}
	return false
}
