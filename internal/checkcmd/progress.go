package checkcmd

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// The progress line on stderr, for long lists: "checked 340/1000: 312 ok,
// 28 failed, 12s", rewritten in place. It holds counts only, never a proxy
// URL or a password.

const (
	// minRedraw is the least time between two draws of the line.
	minRedraw = 100 * time.Millisecond
	// shortList is the longest list that gets no progress line.
	shortList = 10
	// clearLine returns to the start of the line and erases it.
	clearLine = "\r\033[K"
)

// progress draws the progress line. It is safe for concurrent use.
type progress struct {
	w     io.Writer
	on    bool
	total int
	now   func() time.Time

	mu               sync.Mutex
	done, ok, failed int
	began            time.Time
	last             time.Time // of the last draw
	shown            string    // the line on screen; "" when none

	stopTick chan struct{}
	ticking  sync.WaitGroup
}

// newProgress returns the progress of total checks, drawn on w when
// wanted and the list is long.
func newProgress(w io.Writer, total int, wanted bool) *progress {
	return &progress{w: w, on: wanted && total > shortList, total: total, now: time.Now}
}

// start starts the clock, and the ticker that redraws the line while no
// result comes, so that the time shown moves on.
func (p *progress) start() {
	if !p.on {
		return
	}
	p.began = p.now()
	p.stopTick = make(chan struct{})
	p.ticking.Add(1)
	go func() {
		defer p.ticking.Done()
		t := time.NewTicker(minRedraw)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			case <-p.stopTick:
				return
			}
		}
	}()
}

// stop stops the ticker and clears the line.
func (p *progress) stop() {
	if !p.on {
		return
	}
	if p.stopTick != nil {
		close(p.stopTick)
		p.ticking.Wait()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// add counts one result.
func (p *progress) add(ok bool) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if ok {
		p.ok++
	} else {
		p.failed++
	}
	p.draw()
}

// around runs f, which writes to the terminal that shows the line, with
// the line cleared.
func (p *progress) around(f func()) {
	if !p.on {
		f()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	f()
	p.draw()
}

// draw redraws the line when it changed, unless it was drawn less than
// minRedraw ago. p.mu is held.
func (p *progress) draw() {
	now := p.now()
	if !p.last.IsZero() && now.Sub(p.last) < minRedraw {
		return
	}
	text := fmt.Sprintf("checked %d/%d: %d ok, %d failed, %v",
		p.done, p.total, p.ok, p.failed, now.Sub(p.began).Truncate(time.Second))
	if text == p.shown {
		return
	}
	io.WriteString(p.w, clearLine+text)
	p.shown, p.last = text, now
}

// clear erases the line. p.mu is held.
func (p *progress) clear() {
	if p.shown != "" {
		io.WriteString(p.w, clearLine)
		p.shown = ""
	}
}
