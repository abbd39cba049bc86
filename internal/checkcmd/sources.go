package checkcmd

import (
	"bufio"
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/redact"
)

// The proxies to check come from the arguments and -f together, from
// -pac, or else from the environment. This file reads the first two and
// puts proxyauth's configuration errors back in the user's terms: which
// argument or line of which file.

// whereProxiesComeFrom ends the message for an empty list.
const whereProxiesComeFrom = "give proxy URLs as arguments, one per line in a file with -f FILE (- for stdin), " +
	"a PAC script with -pac URL, or set HTTPS_PROXY or HTTP_PROXY"

// maxLine bounds a line of a -f file.
const maxLine = 1 << 20

// entry is one proxy URL as the user gave it.
type entry struct {
	raw   string // as given; never printed unmasked
	where string // "argument 3", "proxies.txt:18"
}

// proxyList is the proxies from the arguments and -f, in that order: the
// Config.Proxies of the check.
type proxyList struct {
	entries []entry
}

// readList reads the proxies of the arguments and of o.file (stdin for
// "-"). A file that names none, with no arguments, is an error: the
// environment is used only when neither is given.
func readList(o *options, stdin io.Reader) (*proxyList, error) {
	l := &proxyList{}
	for i, a := range o.args {
		l.entries = append(l.entries, entry{raw: a, where: "argument " + strconv.Itoa(i+1)})
	}
	if o.file == "" {
		return l, nil
	}
	name, r := o.file, stdin
	if o.file == "-" {
		name = "stdin"
		if r == nil {
			r = strings.NewReader("")
		}
	} else {
		f, err := os.Open(o.file)
		if err != nil {
			return nil, configf("-f: %v", err)
		}
		defer f.Close()
		r = f
	}
	n, err := l.read(name, r)
	if err != nil {
		return nil, err
	}
	if n == 0 && len(o.args) == 0 {
		return nil, configf("%s names no proxy (only blank lines and comments): %s", name, whereProxiesComeFrom)
	}
	return l, nil
}

// read appends the proxies of the file name, read from r, and returns how
// many it names.
func (l *proxyList) read(name string, r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line, n := 0, 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		if v := uncomment(text); v != "" {
			l.entries = append(l.entries, entry{raw: v, where: name + ":" + strconv.Itoa(line)})
			n++
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return 0, configf("%s:%d: the line is longer than %d bytes", name, line+1, maxLine)
	case err != nil:
		return 0, configf("-f %s: %v", name, err)
	}
	return n, nil
}

// uncomment returns a line of a -f file without its comment (from a "#"
// at the start or after a blank) and surrounding blanks. A proxy URL has
// no blank, and a "#" in its password is percent-encoded, so this cuts no
// URL.
func uncomment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			s = s[:i]
			break
		}
	}
	return strings.TrimSpace(s)
}

// checkNoUserinfo refuses a proxy URL with userinfo when -user gives the
// credentials too.
func (l *proxyList) checkNoUserinfo() error {
	for _, e := range l.entries {
		if strings.Contains(e.raw, "@") {
			return configf("%s: %q: %s", e.where, redact.Raw(e.raw), bothCredentials)
		}
	}
	return nil
}

// bothCredentials says why a proxy URL with userinfo and -user conflict.
const bothCredentials = "has a username and password, and -user gives them too: remove them from the URL, or leave out -user"

// proxiesField matches the index in "Proxies[17]".
var proxiesField = regexp.MustCompile(`\bProxies\[(\d+)\]`)

// envFields are the variables proxyauth reads the proxies from.
var envFields = map[string]bool{"HTTPS_PROXY": true, "https_proxy": true, "HTTP_PROXY": true, "http_proxy": true}

// explain turns an error of proxyauth.New or CheckWith's *ConfigError
// into a message in the user's terms: "proxies.txt:18" for "Proxies[17]",
// "-pac" for "PAC", and so on. The values of a ConfigError are masked
// already.
func (l *proxyList) explain(err error, o *options) error {
	var ce *proxyauth.ConfigError
	if !errors.As(err, &ce) {
		return configf("%v", err)
	}
	where := ce.Field
	switch {
	case ce.Field == "Proxies" && len(l.entries) == 0 && o.pac == "":
		return configf("no proxy to check: the environment names none "+
			"(HTTPS_PROXY, HTTP_PROXY and their lower-case forms are unset): %s", whereProxiesComeFrom)
	case envFields[ce.Field]:
		where = "the environment variable " + ce.Field
		// With a CredentialsFunc set, New refuses userinfo first.
		if o.user != "" && strings.HasPrefix(ce.Value, redact.Mask+"@") {
			return configf("%s: %q: %s", where, ce.Value, bothCredentials)
		}
	case ce.Field == "PAC":
		where = "-pac"
	case ce.Field == "target":
		where = "-target"
	case proxiesField.MatchString(ce.Field):
		where = l.where(ce.Field)
	}
	msg := where
	if ce.Value != "" {
		msg += ": " + strconv.Quote(ce.Value)
	}
	return configf("%s: %s", msg, proxiesField.ReplaceAllStringFunc(ce.Reason, l.where))
}

// where returns where the proxy of a field "Proxies[i]" came from, or the
// field itself if there is no such entry.
func (l *proxyList) where(field string) string {
	m := proxiesField.FindStringSubmatch(field)
	if m == nil {
		return field
	}
	i, err := strconv.Atoi(m[1])
	if err != nil || i >= len(l.entries) {
		return field
	}
	return l.entries[i].where
}
