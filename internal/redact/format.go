package redact

import (
	"fmt"
	"io"
)

// Format formats, for an fmt.Formatter, a value whose text must not show a
// secret: %#v writes goSyntax, and every other verb formats text as fmt
// would format a string (%v and %s give it, %q quotes it, %x gives it in
// hex). Both must have their secrets masked already.
func Format(f fmt.State, verb rune, goSyntax, text string) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, goSyntax)
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), text)
}
