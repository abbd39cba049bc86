package pac

import (
	_ "embed"
	"errors"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

//go:embed guard.js
var guardSrc string

// guardProgram is guard.js compiled; a goja Program is immutable and may run
// in many runtimes at once.
var guardProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("guard.js", guardSrc, true)
})

// limits are the bounds guard.js enforces.
type limits struct {
	maxStr  int // UTF-16 units of a string a guarded builtin builds
	maxLen  int // elements of an array a guarded builtin walks
	maxArgs int // arguments of apply and friends
}

func newLimits(maxMemory int64) limits {
	l := limits{maxStr: int(min(maxMemory/4, 1<<30)), maxLen: 1 << 20, maxArgs: 1 << 16}
	if l.maxStr < 1<<16 {
		l.maxStr = 1 << 16
	}
	return l
}

// maxRegexCache bounds the per-VM cache of regexOK answers.
const maxRegexCache = 256

// installGuard runs guard.js on v's runtime, before any script code.
func (v *vm) installGuard() error {
	rt := v.rt
	f, err := rt.RunProgram(guardProgram())
	if err != nil {
		return err
	}
	fn, ok := goja.AssertFunction(f)
	if !ok {
		return errors.New("guard.js does not evaluate to a function")
	}
	l := v.s.limits
	L := rt.NewObject()
	for k, val := range map[string]any{
		"maxStr":   l.maxStr,
		"maxLen":   l.maxLen,
		"maxArgs":  l.maxArgs,
		"maxDepth": maxNesting,
		"regexOK": func(call goja.FunctionCall) goja.Value {
			return rt.ToValue(v.regexOK(call.Argument(0).String(), call.Argument(1).String()))
		},
		"codeOK": func(call goja.FunctionCall) goja.Value {
			return rt.ToValue(checkCode(call.Argument(0).String()))
		},
		"jsonOK": func(call goja.FunctionCall) goja.Value {
			return rt.ToValue(scanNesting(call.Argument(0).String(), true))
		},
	} {
		if err := L.Set(k, val); err != nil {
			return err
		}
	}
	_, err = fn(goja.Undefined(), L, rt.GlobalObject())
	return err
}

// regexOK reports whether goja runs the regular expression source with
// flags on Go's regexp package, which matches in linear time, rather than
// on regexp2, which backtracks and cannot be interrupted. It mirrors goja's
// choice: regexp2 for patterns Go's syntax lacks (backreferences,
// lookaround) and for repeat counts above 1000.
func (v *vm) regexOK(source, flags string) bool {
	key := flags + "/" + source
	if ok, hit := v.regexCache[key]; hit {
		return ok
	}
	ok := regexLinear(source, flags)
	if v.regexCache == nil || len(v.regexCache) >= maxRegexCache {
		v.regexCache = map[string]bool{}
	}
	v.regexCache[key] = ok
	return ok
}

func regexLinear(source, flags string) bool {
	re2, err := parser.TransformRegExp(source, strings.Contains(flags, "s"), strings.ContainsAny(flags, "uv"))
	if err != nil {
		var incompat parser.RegexpErrorIncompatible
		return !errors.As(err, &incompat) // a syntax error is goja's to report
	}
	var pre string
	for _, f := range "msi" {
		if strings.ContainsRune(flags, f) {
			pre += string(f)
		}
	}
	if pre != "" {
		re2 = "(?" + pre + ":" + re2 + ")"
	}
	_, err = regexp.Compile(re2)
	var se *syntax.Error
	return !(errors.As(err, &se) && se.Code == syntax.ErrInvalidRepeatSize)
}
