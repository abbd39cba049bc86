package checkcmd

import (
	"strings"
	"testing"
	"time"
)

func TestProgressThrottle(t *testing.T) {
	var out syncBuffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newProgress(&out, 1000, true)
	p.now = func() time.Time { return now }
	p.began = now
	for range 5 {
		p.add(true)
	}
	if got, want := out.String(), clearLine+"checked 1/1000: 1 ok, 0 failed, 0s"; got != want {
		t.Fatalf("after 5 results at once: %q, want one draw %q", got, want)
	}
	now = now.Add(minRedraw - time.Millisecond)
	p.add(false)
	if n := strings.Count(out.String(), "checked"); n != 1 {
		t.Fatalf("%d draws within %v, want 1", n, minRedraw)
	}
	now = now.Add(12 * time.Second)
	p.add(false)
	if got, want := out.String()[strings.LastIndex(out.String(), clearLine):], clearLine+"checked 7/1000: 5 ok, 2 failed, 12s"; got != want {
		t.Errorf("after %v: %q, want %q", minRedraw, got, want)
	}

	// Rows on the same terminal: the line is cleared before, and drawn
	// again after when the throttle allows.
	out.b.Reset()
	p.around(func() { out.Write([]byte("row\n")) })
	if got := out.String(); got != clearLine+"row\n" {
		t.Errorf("around, throttled: %q, want the line cleared before the row", got)
	}
	now = now.Add(time.Second)
	out.b.Reset()
	p.around(func() { out.Write([]byte("row\n")) })
	if got, want := out.String(), "row\n"+clearLine+"checked 7/1000: 5 ok, 2 failed, 13s"; got != want {
		t.Errorf("around: %q, want %q", got, want)
	}
	out.b.Reset()
	p.stop()
	if got := out.String(); got != clearLine {
		t.Errorf("stop: %q, want the line cleared", got)
	}
}

func TestProgressOnlyForLongLists(t *testing.T) {
	for _, tt := range []struct {
		total  int
		wanted bool
		on     bool
	}{{shortList, true, false}, {shortList + 1, true, true}, {1000, false, false}} {
		if p := newProgress(nil, tt.total, tt.wanted); p.on != tt.on {
			t.Errorf("newProgress(%d, %v).on = %v, want %v", tt.total, tt.wanted, p.on, tt.on)
		}
	}
}
