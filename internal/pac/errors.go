package pac

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrorKind says why a script could not be compiled or evaluated.
type ErrorKind int

const (
	// KindSyntax: the script does not parse, or it is larger or more deeply
	// nested than this package accepts, or it uses a literal this package
	// refuses (BigInt).
	KindSyntax ErrorKind = iota + 1
	// KindNoFunction: the script defines neither FindProxyForURL nor
	// FindProxyForURLEx.
	KindNoFunction
	// KindThrow: the script threw an exception (Msg holds its message,
	// bounded), which includes exceeding the call stack bound and the
	// RangeErrors of the guarded builtins.
	KindThrow
	// KindTimeout: the script ran longer than Options.CallTimeout, or an
	// earlier evaluation of the script is still stuck past its bounds.
	KindTimeout
	// KindMemory: the script allocated more than Options.MaxMemory.
	KindMemory
	// KindBadResult: FindProxyForURL returned something other than a string
	// (Msg names its type), a non-ASCII string or an overlong one.
	KindBadResult
	// KindCanceled: the caller's context ended first; Err is its error.
	KindCanceled
)

var errorKindNames = [...]string{
	KindSyntax:     "syntax error",
	KindNoFunction: "no FindProxyForURL",
	KindThrow:      "exception",
	KindTimeout:    "timeout",
	KindMemory:     "memory bound",
	KindBadResult:  "bad result",
	KindCanceled:   "canceled",
}

// String returns a short lower-case name of the kind, as used in
// [Error.Error].
func (k ErrorKind) String() string {
	if k > 0 && int(k) < len(errorKindNames) {
		return errorKindNames[k]
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a failure to compile or evaluate a script.
type Error struct {
	// Kind says what went wrong.
	Kind ErrorKind
	// Func is the JavaScript function being called ("FindProxyForURL" or
	// "FindProxyForURLEx"), or "" for the script's top-level code and for
	// compile errors.
	Func string
	// Msg gives details: the parser's or the exception's message, the type
	// of a bad result, the bound that was exceeded. It is the script's own
	// text where it comes from the script, at most 256 bytes, with control
	// characters escaped. The URL and host given to FindProxy appear in it
	// only if the script puts them there.
	Msg string
	// Err is the underlying error, if any: the context's error for
	// KindCanceled. Unwrap returns it.
	Err error
}

// Error returns "pac: " followed by the function, the kind and the message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pac: ")
	if e.Func != "" {
		b.WriteString(e.Func)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// maxMsg bounds Error.Msg in bytes.
const maxMsg = 256

// boundMsg returns s with control characters and invalid UTF-8 escaped, cut
// to at most maxMsg bytes (on a rune boundary, ending in "..." when cut).
func boundMsg(s string) string {
	var b strings.Builder
	cut := -1 // b.Len() at the last piece boundary that leaves room for "..."
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			piece = `\x` + strconv.FormatUint(uint64(s[i]), 16)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029:
			q := strconv.QuoteRune(r)
			piece = q[1 : len(q)-1]
		}
		if b.Len()+len(piece) > maxMsg {
			if cut < 0 {
				cut = b.Len()
			}
			return b.String()[:cut] + "..."
		}
		if b.Len()+len(piece) <= maxMsg-3 {
			cut = b.Len() + len(piece)
		} else if cut < 0 {
			cut = b.Len()
		}
		b.WriteString(piece)
		i += size
	}
	return b.String()
}
