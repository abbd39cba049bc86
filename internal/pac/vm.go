package pac

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
)

// vm is one goja runtime with the helpers installed and the script's
// top-level code run. It is used by one goroutine at a time.
type vm struct {
	s          *Script
	rt         *goja.Runtime
	fn         goja.Callable
	entry      string
	cur        *call           // the call running on rt; only its goroutine touches it
	broken     bool            // interrupted or overflowed: never reuse
	allocated  uint64          // bytes charged to the calls it ran
	regexCache map[string]bool // regexOK answers
}

// newVM makes a VM and runs the script's top-level code on it, bounded like
// a call.
func (s *Script) newVM(ctx context.Context) (*vm, error) {
	rt := goja.New()
	rt.SetMaxCallStackSize(maxCallDepth)
	rt.SetTimeSource(goja.Now(s.o.Now))
	v := &vm{s: s, rt: rt}
	if err := v.installGuard(); err != nil {
		return nil, &Error{Kind: KindThrow, Msg: boundMsg("internal error: " + err.Error())}
	}
	v.installHelpers()
	_, _, err := s.run(ctx, v, "", func() (string, error) {
		if _, err := rt.RunProgram(s.prog); err != nil {
			return "", v.jsError("", err)
		}
		// Looked up here, within the bounds: the global may be a getter.
		for _, name := range [...]string{"FindProxyForURLEx", "FindProxyForURL"} {
			var f goja.Callable
			if ex := rt.Try(func() { f, _ = goja.AssertFunction(rt.Get(name)) }); ex != nil {
				return "", v.jsError("", ex)
			}
			if f != nil {
				v.fn, v.entry = f, name
				return "", nil
			}
		}
		return "", &Error{Kind: KindNoFunction, Msg: "the script defines neither FindProxyForURL nor FindProxyForURLEx as a function"}
	})
	if err != nil {
		return nil, err
	}
	v.allocated = 0 // what the top-level code built is the baseline, not growth
	return v, nil
}

// call runs the entry function for url and host on v and returns v to the
// pool unless it must be discarded.
func (s *Script) call(ctx context.Context, v *vm, url, host string) (string, error) {
	res, done, err := s.run(ctx, v, v.entry, func() (string, error) {
		r, err := v.fn(goja.Undefined(), v.rt.ToValue(url), v.rt.ToValue(host))
		if err != nil {
			return "", v.jsError(v.entry, err)
		}
		return v.result(r)
	})
	if done && !v.broken {
		s.put(v)
	}
	return res, err
}

// result checks what the entry function returned.
func (v *vm) result(r goja.Value) (string, error) {
	str, ok := r.(goja.String)
	if !ok {
		return "", &Error{Kind: KindBadResult, Func: v.entry, Msg: "returned " + typeName(r) + ", not a string"}
	}
	if str.Length() > maxResultLen {
		return "", &Error{Kind: KindBadResult, Func: v.entry,
			Msg: "returned a string longer than " + strconv.Itoa(maxResultLen>>10) + " KiB"}
	}
	s := str.String()
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "", &Error{Kind: KindBadResult, Func: v.entry, Msg: "returned a non-ASCII string: " + boundMsg(s)}
		}
	}
	return s, nil
}

// typeName describes a JavaScript value's type for a message.
func typeName(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsNull(v):
		return "null"
	}
	if o, ok := v.(*goja.Object); ok {
		if _, ok := goja.AssertFunction(o); ok {
			return "a function"
		}
		return "an object (" + o.ClassName() + ")"
	}
	if _, ok := v.(*goja.Symbol); ok {
		return "a symbol"
	}
	switch v.ExportType().Kind().String() {
	case "bool":
		return "a boolean"
	case "int64", "float64":
		return "a number"
	}
	return "a " + v.ExportType().String()
}

// errStackOverflow is the message of a call that nested too deeply.
var errStackOverflow = "maximum call stack size exceeded (" + strconv.Itoa(maxCallDepth) + " nested calls)"

// jsError turns an error of goja's into an *Error. It runs on the VM's
// goroutine within the call's bounds: reading an exception's message may run
// the script's toString.
func (v *vm) jsError(fn string, err error) error {
	var so *goja.StackOverflowError
	var ie *goja.InterruptedError
	var ex *goja.Exception
	switch {
	case errors.As(err, &so):
		v.broken = true
		return &Error{Kind: KindThrow, Func: fn, Msg: errStackOverflow}
	case errors.As(err, &ie):
		v.broken = true
		return err // the watchdog already answered
	case errors.As(err, &ex):
		msg := "an exception whose message could not be read"
		if val := ex.Value(); val != nil {
			if e := v.rt.Try(func() { msg = val.String() }); e != nil {
				msg = "an exception whose message could not be read"
			}
		}
		for _, fr := range ex.Stack() { // the innermost frame of the script's own code
			if fr.SrcName() == scriptName {
				if p := fr.Position(); p.Line > 0 {
					msg += " (line " + strconv.Itoa(p.Line) + ", column " + strconv.Itoa(p.Column) + ")"
				}
				break
			}
		}
		return &Error{Kind: KindThrow, Func: fn, Msg: boundMsg(msg)}
	}
	v.broken = true
	return &Error{Kind: KindThrow, Func: fn, Msg: boundMsg(err.Error())}
}

// call is the state of one evaluation, shared by the goroutine running it
// and the watchdog.
type call struct {
	ctx        context.Context
	start      time.Time
	alloc0     uint64
	waiting    atomic.Bool   // blocked in a DNS lookup
	waitNanos  atomic.Int64  // time spent blocked so far
	waitAlloc  atomic.Uint64 // bytes allocated (by anyone) while blocked
	lookupWait time.Duration // as waitNanos; only the VM's goroutine uses it
	lookups    int           // lookups started; only the VM's goroutine uses it
	abandoned  atomic.Bool   // the watchdog gave up: Go loops in helpers stop
	state      atomic.Int32
	done       chan outcome
}

const (
	running int32 = iota
	finished
	abandoned
)

type outcome struct {
	s   string
	err error
}

// sampleEvery is how often the watchdog checks a running call.
const sampleEvery = time.Millisecond

// errInterrupted is the value goja's interrupts carry.
var errInterrupted = errors.New("pac: interrupted")

// run runs f on v in a goroutine of its own and watches it: it interrupts
// it, and returns an *Error without waiting for it, when ctx ends or when it
// exceeds CallTimeout or MaxMemory. done reports whether f returned: when
// it is false the VM was abandoned, and the caller must not touch it again;
// its goroutine drops it when f returns.
func (s *Script) run(ctx context.Context, v *vm, fn string, f func() (string, error)) (res string, done bool, err error) {
	c := &call{ctx: ctx, start: time.Now(), alloc0: heapAllocs(), done: make(chan outcome, 1)}
	go func() {
		var o outcome
		func() {
			defer func() {
				if r := recover(); r != nil {
					v.broken = true
					o = outcome{err: &Error{Kind: KindThrow, Func: fn, Msg: boundMsg(fmt.Sprint("internal error: ", r))}}
				}
			}()
			v.cur = c
			o.s, o.err = f()
			v.cur = nil
		}()
		if c.state.CompareAndSwap(running, finished) {
			c.done <- o
			return
		}
		s.stuck.Add(-1)
	}()
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		var e *Error
		select {
		case o := <-c.done:
			res, err = s.finish(v, c, fn, o)
			return res, true, err
		case <-ctx.Done():
			e = &Error{Kind: KindCanceled, Func: fn, Msg: ctx.Err().Error(), Err: ctx.Err()}
		case <-tick.C:
			if c.waiting.Load() {
				continue
			}
			if ran := time.Since(c.start) - time.Duration(c.waitNanos.Load()); ran > s.o.CallTimeout {
				e = &Error{Kind: KindTimeout, Func: fn, Msg: "ran longer than " + s.o.CallTimeout.String()}
			} else if a := heapAllocs() - c.alloc0 - c.waitAlloc.Load(); a > uint64(s.o.MaxMemory) {
				e = &Error{Kind: KindMemory, Func: fn, Msg: "allocated more than " + strconv.FormatInt(s.o.MaxMemory>>20, 10) + " MiB"}
			} else {
				continue
			}
		}
		if c.state.CompareAndSwap(running, abandoned) {
			s.stuck.Add(1)
			c.abandoned.Store(true)
			v.rt.Interrupt(errInterrupted)
			return "", false, e
		}
		res, err = s.finish(v, c, fn, <-c.done) // it finished meanwhile
		return res, true, err
	}
}

// finish charges a finished call's allocations to v and returns its
// outcome, unless the context ended meanwhile: then a DNS lookup may have
// failed for that reason alone, and the script's answer is not to be
// trusted.
func (s *Script) finish(v *vm, c *call, fn string, o outcome) (string, error) {
	v.allocated += heapAllocs() - c.alloc0 - c.waitAlloc.Load()
	if err := c.ctx.Err(); err != nil {
		return "", &Error{Kind: KindCanceled, Func: fn, Msg: err.Error(), Err: err}
	}
	return o.s, o.err
}

// heapAllocs returns the bytes the process has allocated on the heap so far.
func heapAllocs() uint64 {
	s := [1]metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s[:])
	return s[0].Value.Uint64()
}

// wait marks the call as blocked (in a DNS lookup) while f runs, so that
// neither the time nor the allocations of the wait are charged to it.
func (c *call) wait(f func()) {
	a0 := heapAllocs()
	t0 := time.Now()
	c.waiting.Store(true)
	f()
	d := time.Since(t0)
	c.lookupWait += d
	c.waitNanos.Add(int64(d))
	c.waitAlloc.Add(heapAllocs() - a0)
	c.waiting.Store(false)
}
