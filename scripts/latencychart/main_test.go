package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
)

// sample has two modes of the https target, a row of another target that
// -target https leaves out, a failed request and a kill in each mode.
const sample = `target,mode,seq,start_ms,latency_ms,proxy,primary,error
https,hedge=on,0,0.5,21.0,primary,up,
https,hedge=on,1,10.0,22.0,primary,up,
https,hedge=on,2,30.0,150.0,secondary,dead,
https,hedge=on,3,40.0,21.5,secondary,dead,
https,hedge=off,0,0.4,21.0,primary,up,
https,hedge=off,1,31.0,2030.0,secondary,dead,
https,hedge=off,2,2100.0,60000.0,,dead,ProxyUnavailable
http,hedge=off,0,0.4,21.0,primary,up,
`

// element is an SVG element as the test sees it.
type element struct {
	name  string
	attrs map[string]string
	text  string
	group string // data-mode of the enclosing series group, if any
}

// elements decodes doc as XML, failing the test if it is not well formed,
// and returns its elements in document order.
func elements(t *testing.T, doc []byte) []element {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var (
		out   []element
		stack []int // indexes into out of the open elements
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			for _, i := range stack {
				if out[i].name == "g" && out[i].attrs["class"] == "series" {
					e.group = out[i].attrs["data-mode"]
				}
			}
			stack = append(stack, len(out))
			out = append(out, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				out[stack[len(stack)-1]].text += string(tok)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("%d elements left open", len(stack))
	}
	return out
}

func TestRender(t *testing.T) {
	ss, err := parse(strings.NewReader(sample), "https")
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	render(&doc, ss, labels{title: "Latency <when> the primary dies", subtitle: "ProxyTimeout 2 s"})
	els := elements(t, doc.Bytes())
	if len(els) == 0 || els[0].name != "svg" || els[0].attrs["width"] == "" {
		t.Fatalf("the document does not start with an <svg> element with a width")
	}

	points := map[string]int{}
	failed := map[string]int{}
	var series, killed []string
	var texts []string
	killX := map[string]float64{}
	for _, e := range els {
		switch {
		case e.name == "g" && e.attrs["class"] == "series":
			series = append(series, e.attrs["data-mode"])
		case e.name == "circle" && e.group != "":
			points[e.group]++
		case e.name == "path" && e.attrs["class"] == "failed":
			failed[e.group]++
		case e.name == "line" && e.attrs["class"] == "killed":
			killed = append(killed, e.attrs["data-mode"])
			x, err := strconv.ParseFloat(e.attrs["x1"], 64)
			if err != nil {
				t.Fatalf("killed line x1 %q: %v", e.attrs["x1"], err)
			}
			killX[e.attrs["data-mode"]] = x
		case e.name == "text":
			texts = append(texts, e.text)
		}
	}
	if got, want := strings.Join(series, ","), "hedge=on,hedge=off"; got != want {
		t.Errorf("series %s, want %s (in the order of the input, the http row left out)", got, want)
	}
	if points["hedge=on"] != 4 || points["hedge=off"] != 2 || failed["hedge=off"] != 1 || failed["hedge=on"] != 0 {
		t.Errorf("points %v and failed %v, want hedge=on 4 and 0, hedge=off 2 and 1", points, failed)
	}
	if got := strings.Join(killed, ","); got != "hedge=on,hedge=off" {
		t.Errorf("kill markers for %s, want hedge=on,hedge=off", got)
	}
	// hedge=on's first dead row starts at 30 ms, hedge=off's at 31 ms: the
	// marker of the later kill is to the right.
	if killX["hedge=off"] <= killX["hedge=on"] {
		t.Errorf("kill markers at x %v (hedge=on) and %v (hedge=off), want the second to the right", killX["hedge=on"], killX["hedge=off"])
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{
		"Latency <when> the primary dies", // escaped in the file, itself once decoded
		"ProxyTimeout 2 s",
		"hedge=on: 4 requests, p50 22 ms, p99 150 ms, max 150 ms",
		"hedge=off: 3 requests, p50 2.03 s, p99 60 s, max 60 s, 1 failed",
		"latency (log scale)",
		"10 ms", "100 s", // the decades around 21 ms and 60 s
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no text %q in the chart; its texts:\n%s", want, all)
		}
	}

	var again bytes.Buffer
	render(&again, ss, labels{title: "Latency <when> the primary dies", subtitle: "ProxyTimeout 2 s"})
	if !bytes.Equal(doc.Bytes(), again.Bytes()) {
		t.Error("two renderings of the same input differ")
	}
}

func TestParseErrors(t *testing.T) {
	const header = "target,mode,seq,start_ms,latency_ms,proxy,primary,error\n"
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty", "", "empty input"},
		{"no latency column", "target,mode,start_ms,primary,error\n", `no column "latency_ms"`},
		{"latency not a number", header + "https,hedge=on,0,1.0,fast,primary,up,\n", `line 2: latency_ms "fast" is not a number`},
		{"zero latency", header + "https,hedge=on,0,1.0,0,primary,up,\n", "line 2: latency_ms 0 is not positive"},
		{"negative start", header + "https,hedge=on,0,-1,2,primary,up,\n", "line 2: start_ms -1 is negative"},
		{"primary neither up nor dead", header + "https,hedge=on,0,1,2,primary,gone,\n", `line 2: primary "gone"`},
		{"no row of the target", header + "http,hedge=on,0,1,2,primary,up,\n", `no rows for target "https"`},
		{"a short row", header + "https,hedge=on\n", "wrong number of fields"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ss, err := parse(strings.NewReader(c.in), "https")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("parse = %d series, %v; want an error with %q", len(ss), err, c.want)
			}
		})
	}
}
