package pac

import (
	"strings"
	"testing"
)

func TestScanNesting(t *testing.T) {
	rep := strings.Repeat
	for _, c := range []struct {
		name, src string
		refused   bool
	}{
		{"brackets", rep("(", 1000) + rep(")", 1000), false},
		{"brackets too deep", rep("(", 1001) + rep(")", 1001), true},
		{"arrays too deep", rep("[", 5000), true},
		{"template nesting", rep("`${", 1001) + "1" + rep("}`", 1001), true},
		{"plus chain", "x = 1" + rep(" + a", maxChain), true},
		{"member chain", "a" + rep(".b", maxChain+1), true},
		{"call chain", "f" + rep("()", maxChain+1), true},
		{"ternary chain", rep("a ? b : ", maxChain), true},
		{"arrow chain", rep("x => ", maxChain+1) + "1", true},
		{"unary run", rep("!", maxChain+1) + "x", true},
		{"typeof run", rep("typeof ", maxChain+1) + "x", true},
		{"else-if chain", rep("if (a) x(); else ", maxChain) + "y();", true},
		{"chains across lines", rep("a =\n", maxChain+1) + "1", true},
		{"chain continued by an operator line", "a = b" + rep("\n+ c", maxChain), true},
		// Legitimate shapes, large.
		{"statements", rep("x = a + b * c;\n", 100000), false},
		{"statements without semicolons", rep("d[\"x.com\"] = 1\n", 100000), false},
		{"array of strings", "var l = [" + rep(`"a.b.c:d|e",`, 100000) + "];", false},
		{"object literal", "var o = {" + rep(`"a.com": 1, `, 100000) + "};", false},
		{"string of operators", `var s = "` + rep("a.b|c-d+", 100000) + `";`, false},
		{"comments", "/* " + rep("*-+(", 100000) + " */\n// " + rep("((((", 1000) + "\nvar x = 1;", false},
		{"regexp", "var r = /^(a|b)+[()]$/;", false},
		{"template", "var t = `a ${b + `c ${d}`} e`;", false},
		{"else-if chain, short", rep("if (a) { x(); } else ", 5000) + "{ y(); }", false},
		{"function bodies", rep("function f() { if (a) return 1; return 2; }\n", 10000), false},
		{"string escapes", `var s = "\"((((\\";` + "\nvar t = '\\'[[[[';", false},
		{"unterminated", "var s = \"abc\n(((", false},
	} {
		m := scanNesting(c.src, false)
		if (m != "") != c.refused {
			t.Errorf("%s: scanNesting = %q, refused %v, want %v", c.name, m, m != "", c.refused)
		}
	}
	if m := scanNesting(rep("[", 1001), true); m == "" {
		t.Error("JSON nested 1001 deep was accepted")
	}
	if m := scanNesting(`{"a": "[[[[", "b": [1, 2, {"c": null}]}`, true); m != "" {
		t.Errorf("ordinary JSON refused: %s", m)
	}
}

func FuzzScanNesting(f *testing.F) {
	for _, s := range []string{"", "((", "a ? b : c", "`${`${x}`}`", "/* */ // x\n'a' \"b\"", "if (a) b; else c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scanNesting(s, false)
		scanNesting(s, true)
	})
}
