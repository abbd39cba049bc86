package pac

import (
	"math/big"
	"reflect"
	"strconv"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
)

// Limits on source code (the script, and code given to eval and the
// Function constructors). goja's parser and compiler recurse once per
// nesting level and once per operator of a chain, with up to about 3 KiB of
// Go stack per level; Go aborts the process when a goroutine's stack
// passes 1 GiB, which a few hundred KiB of "((((" would reach. These keep a
// parse within a few tens of MiB of stack.
const (
	maxNesting = 1000  // brackets open at once
	maxChain   = 20000 // operators and nesting statements along one path
)

// compileSource checks and compiles src. Errors are *Error with KindSyntax.
func compileSource(name, src string) (*goja.Program, error) {
	if len(src) > maxScriptSize {
		return nil, &Error{Kind: KindSyntax, Msg: "script larger than " + strconv.Itoa(maxScriptSize>>20) + " MiB"}
	}
	if m := scanNesting(src, false); m != "" {
		return nil, &Error{Kind: KindSyntax, Msg: m}
	}
	prg, err := goja.Parse(name, src)
	if err != nil {
		return nil, &Error{Kind: KindSyntax, Msg: boundMsg(err.Error())}
	}
	if hasBigInt(reflect.ValueOf(prg), map[uintptr]bool{}) {
		return nil, &Error{Kind: KindSyntax, Msg: errBigInt}
	}
	prog, err := goja.CompileAST(prg, false)
	if err != nil {
		return nil, &Error{Kind: KindSyntax, Msg: boundMsg(err.Error())}
	}
	return prog, nil
}

const errBigInt = "BigInt literals are not supported in PAC scripts"

// checkCode returns why code is refused, or "": nesting and chains beyond
// the limits, a syntax error, or a BigInt literal (a single BigInt
// operation such as 2n**(2n**40n) allocates without bound and cannot be
// interrupted).
func checkCode(code string) string {
	if m := scanNesting(code, false); m != "" {
		return m
	}
	prg, err := goja.Parse("", code)
	if err != nil {
		return "" // goja reports the syntax error when it compiles
	}
	if hasBigInt(reflect.ValueOf(prg), map[uintptr]bool{}) {
		return errBigInt
	}
	return ""
}

var (
	astPkg      = reflect.TypeOf(ast.Program{}).PkgPath()
	numberLitTy = reflect.TypeOf(&ast.NumberLiteral{})
)

// hasBigInt reports whether the AST below v holds a BigInt literal. It walks
// only values of goja's ast package.
func hasBigInt(v reflect.Value, seen map[uintptr]bool) bool {
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return false
		}
		return hasBigInt(v.Elem(), seen)
	case reflect.Pointer:
		if v.IsNil() || v.Type().Elem().PkgPath() != astPkg {
			return false
		}
		if seen[v.Pointer()] {
			return false
		}
		seen[v.Pointer()] = true
		if v.Type() == numberLitTy {
			_, big := v.Interface().(*ast.NumberLiteral).Value.(*big.Int)
			return big
		}
		return hasBigInt(v.Elem(), seen)
	case reflect.Struct:
		if v.Type().PkgPath() != astPkg {
			return false
		}
		for i := 0; i < v.NumField(); i++ {
			if hasBigInt(v.Field(i), seen) {
				return true
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if hasBigInt(v.Index(i), seen) {
				return true
			}
		}
	}
	return false
}

// nestFrame is an open bracket of the scan.
type nestFrame struct {
	open  byte // '(', '[', '{', or '$' for a template literal's "${"
	chain int  // operators since the last ';' or ',' at this level
	stmt  int  // else, do and if/for/while/with at this level
}

// scanNesting returns why src nests or chains deeper than the limits allow,
// or "". It reads JavaScript (json false) or JSON (json true) as a lexer
// would, skipping strings, template text and comments, and counts what makes
// goja's parser recurse: open brackets, and along the path of open brackets
// the operators of an expression (reset by ';' and ',' and by a line break
// between two statements) and the statements that nest without brackets.
// It does not tell a regular expression literal from a division, so
// brackets and operators inside regular expressions count as code: a
// script crafted to mislead it that way (quotes and closing brackets inside
// regular expression literals) may get past it.
func scanNesting(src string, json bool) string {
	stack := []nestFrame{{}}
	sum := 0         // chain+stmt over the stack
	exprEnd := false // the last token can end an expression
	newline := false // a line break since the last token
	top := func() *nestFrame { return &stack[len(stack)-1] }
	bump := func(stmt bool) string {
		if stmt {
			top().stmt++
		} else {
			top().chain++
		}
		if sum++; sum > maxChain {
			return "more than " + strconv.Itoa(maxChain) + " chained operators or nested statements"
		}
		return ""
	}
	reset := func() {
		sum -= top().chain
		top().chain = 0
	}
	push := func(open byte) string {
		if len(stack) > maxNesting {
			return "brackets nested deeper than " + strconv.Itoa(maxNesting)
		}
		stack = append(stack, nestFrame{open: open})
		return ""
	}
	pop := func(close byte) bool { // reports whether it closed a template's "${"
		open := byte('{')
		switch close {
		case ')':
			open = '('
		case ']':
			open = '['
		}
		f := top()
		if len(stack) == 1 || (f.open != open && !(close == '}' && f.open == '$')) {
			return false // unbalanced: ignore
		}
		sum -= f.chain + f.stmt
		stack = stack[:len(stack)-1]
		return f.open == '$'
	}
	i := 0
	// template skips template text from i (after '`' or a closing '}' of
	// "${") to after the closing '`' (ended) or an opening "${".
	template := func() (ended bool, m string) {
		for i < len(src) {
			switch src[i] {
			case '\\':
				i += 2
				continue
			case '`':
				i++
				return true, ""
			case '$':
				if i+1 < len(src) && src[i+1] == '{' {
					i += 2
					return false, push('$')
				}
			}
			i++
		}
		return true, ""
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n' || c == '\r':
			newline = true
			i++
			continue
		case c == ' ' || c == '\t' || c == '\v' || c == '\f':
			i++
			continue
		case !json && c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' && src[i] != '\r' {
				i++
			}
			continue
		case !json && c == '/' && i+1 < len(src) && src[i+1] == '*':
			i += 2
			for i < len(src) && !(src[i] == '*' && i+1 < len(src) && src[i+1] == '/') {
				if src[i] == '\n' {
					newline = true
				}
				i++
			}
			i += 2
			continue
		}
		// A line break between something that ends an expression and
		// something that starts a statement ends the statement (ASI).
		startsWord := isWordByte(c) || c == '"' || c == '\''
		if newline && exprEnd && startsWord {
			if w := word(src, i); w != "in" && w != "instanceof" {
				reset()
			}
		}
		newline = false
		switch {
		case c == '"' || c == '\'':
			i++
			for i < len(src) && src[i] != c && src[i] != '\n' && src[i] != '\r' {
				if src[i] == '\\' {
					i++
				}
				i++
			}
			i++
			exprEnd = true
		case c == '`' && !json:
			i++
			ended, m := template()
			if m != "" {
				return m
			}
			exprEnd = ended
		case isWordByte(c):
			w := word(src, i)
			i += len(w)
			exprEnd = true
			switch w {
			case "typeof", "void", "delete", "new", "in", "instanceof", "await", "yield":
				if m := bump(false); m != "" {
					return m
				}
				exprEnd = false
			case "else", "do", "if", "for", "while", "with":
				if m := bump(true); m != "" {
					return m
				}
				exprEnd = false
			case "return", "case", "throw", "of":
				exprEnd = false
			}
		case c == '(' || c == '[' || c == '{':
			if exprEnd && c != '{' { // a call or an index
				if m := bump(false); m != "" {
					return m
				}
			}
			if m := push(c); m != "" {
				return m
			}
			i++
			exprEnd = false
		case c == ')' || c == ']' || c == '}':
			i++
			exprEnd = true
			if pop(c) {
				ended, m := template()
				if m != "" {
					return m
				}
				exprEnd = ended
			}
		case c == ';' || c == ',':
			reset()
			i++
			exprEnd = false
		default: // an operator: a run of '=', '&', '|', '<' or '>' counts once
			i++
			if c == '=' || c == '&' || c == '|' || c == '<' || c == '>' {
				for i < len(src) && src[i] == c {
					i++
				}
			}
			if m := bump(false); m != "" {
				return m
			}
			exprEnd = false
		}
	}
	return ""
}

// isWordByte reports whether c may be part of an identifier, keyword or
// number (any byte of a multi-byte UTF-8 character counts).
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '$' ||
		c == '\\' || c == '#' || c >= 0x80
}

// word returns the identifier, keyword or number starting at src[i].
func word(src string, i int) string {
	j := i
	for j < len(src) && isWordByte(src[j]) {
		j++
	}
	return src[i:j]
}
