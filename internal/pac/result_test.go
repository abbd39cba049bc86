package pac

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseResult(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    []Entry
		skipped []string
	}{
		{"DIRECT", []Entry{{Direct, ""}}, nil},
		{"PROXY a:8080; SOCKS b:1080; DIRECT", []Entry{{HTTP, "a:8080"}, {SOCKS5, "b:1080"}, {Direct, ""}}, nil},
		{"  proxy   A.Example.COM:3128 ;;; direct ;", []Entry{{HTTP, "a.example.com:3128"}, {Direct, ""}}, nil},
		{"HTTP h:1; HTTPS s:2; SOCKS5 f:3", []Entry{{HTTP, "h:1"}, {HTTPS, "s:2"}, {SOCKS5, "f:3"}}, nil},
		{"PROXY host", []Entry{{HTTP, "host:80"}}, nil},
		{"HTTPS host", []Entry{{HTTPS, "host:443"}}, nil},
		{"SOCKS host", []Entry{{SOCKS5, "host:1080"}}, nil},
		{"PROXY\t10.0.0.1:8080", []Entry{{HTTP, "10.0.0.1:8080"}}, nil},
		{"PROXY [2001:db8::1]:3128; PROXY [::1]", []Entry{{HTTP, "[2001:db8::1]:3128"}, {HTTP, "[::1]:80"}}, nil},
		{"PROXY proxy.corp.:8080", []Entry{{HTTP, "proxy.corp.:8080"}}, nil},
		{"", nil, nil},
		{" ; ; ", nil, nil},
		{"PROXY", nil, []string{`"PROXY"`}},
		{"PROXY a b", nil, []string{`"PROXY a b"`}},
		{"DIRECT x", nil, []string{`"DIRECT x"`}},
		{"QUIC q:443; SOCKS4 s:1080; PROXY ok:1", []Entry{{HTTP, "ok:1"}}, []string{`"QUIC q:443"`, `"SOCKS4 s:1080"`}},
		{"PROXY a:0; PROXY a:65536; PROXY a:+1; PROXY a:08; PROXY a:x", nil,
			[]string{`"PROXY a:0"`, `"PROXY a:65536"`, `"PROXY a:+1"`, `"PROXY a:08"`, `"PROXY a:x"`}},
		{"PROXY http://a:1; PROXY u:p@a:1; PROXY a:1/x; PROXY :80; PROXY .a:1; PROXY a..b:1; PROXY -a:1", nil,
			[]string{`"PROXY http://a:1"`, `"PROXY u:p@a:1"`, `"PROXY a:1/x"`, `"PROXY :80"`, `"PROXY .a:1"`, `"PROXY a..b:1"`, `"PROXY -a:1"`}},
		{"PROXY [::1; PROXY [::1]x; PROXY [1.2.3.4]:1; PROXY [fe80::1%eth0]:1; PROXY ::1:80", nil,
			[]string{`"PROXY [::1"`, `"PROXY [::1]x"`, `"PROXY [1.2.3.4]:1"`, `"PROXY [fe80::1%eth0]:1"`, `"PROXY ::1:80"`}},
		{"garbage", nil, []string{`"garbage"`}},
		{"PROXY caf\u00e9:1", nil, []string{strconv.Quote("PROXY caf\u00e9:1")}},
	} {
		got, skipped := ParseResult(c.in)
		if !reflect.DeepEqual(got, c.want) || !reflect.DeepEqual(skipped, c.skipped) {
			t.Errorf("ParseResult(%q) = %v, %q; want %v, %q", c.in, got, skipped, c.want, c.skipped)
		}
	}
}

func TestParseResultBounds(t *testing.T) {
	got, skipped := ParseResult(strings.Repeat("PROXY a:1;", 100))
	if len(got) != maxEntries || len(skipped) != maxSkipped+1 || skipped[maxSkipped] != "and 20 more" {
		t.Errorf("100 entries: %d entries, %d skipped (%q), want %d and %d ending in \"and 20 more\"",
			len(got), len(skipped), skipped[len(skipped)-1], maxEntries, maxSkipped+1)
	}
	_, skipped = ParseResult("PROXY " + strings.Repeat("x", 1000))
	if len(skipped) != 1 || len(skipped[0]) > maxSkippedLen+2 {
		t.Errorf("a long entry is reported as %q, want at most %d bytes quoted", skipped, maxSkippedLen)
	}
}

func TestKindNames(t *testing.T) {
	for k, want := range map[Kind][2]string{Direct: {"DIRECT", ""}, HTTP: {"HTTP", "http"}, HTTPS: {"HTTPS", "https"}, SOCKS5: {"SOCKS5", "socks5"}, 0: {"Kind(0)", ""}} {
		if k.String() != want[0] || k.Scheme() != want[1] {
			t.Errorf("Kind(%d) = %q, %q; want %q, %q", int(k), k.String(), k.Scheme(), want[0], want[1])
		}
	}
	for k := KindSyntax; k <= KindCanceled; k++ {
		if s := k.String(); s == "" || strings.HasPrefix(s, "ErrorKind(") {
			t.Errorf("ErrorKind(%d) has no name", int(k))
		}
	}
}

func FuzzParseResult(f *testing.F) {
	for _, s := range []string{"DIRECT", "PROXY a:8080; SOCKS b:1080; DIRECT", "PROXY [::1]:80", "HTTPS x", ";;", "PROXY [", "socks5 \t h:65535 ;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries, skipped := ParseResult(s)
		if len(entries) > maxEntries || len(skipped) > maxSkipped+1 {
			t.Fatalf("%d entries, %d skipped: over the bounds", len(entries), len(skipped))
		}
		for _, q := range skipped {
			if len(q) > 4*maxSkippedLen+2 {
				t.Fatalf("skipped entry %d bytes long", len(q))
			}
		}
		for _, e := range entries {
			if e.Kind < Direct || e.Kind > SOCKS5 || (e.Kind == Direct) != (e.Addr == "") {
				t.Fatalf("bad entry %+v", e)
			}
			if e.Kind == Direct {
				continue
			}
			if !utf8.ValidString(e.Addr) || strings.ContainsAny(e.Addr, " \t;/@") {
				t.Fatalf("bad address %q", e.Addr)
			}
			// An address is canonical: parsing it again gives it back.
			again, sk := ParseResult(e.Kind.String() + " " + e.Addr)
			if len(again) != 1 || again[0] != e || len(sk) != 0 {
				t.Fatalf("%q reparses as %v %q", e.Addr, again, sk)
			}
		}
	})
}
