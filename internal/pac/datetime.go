package pac

import (
	"math"
	"strings"
	"time"

	"github.com/dop251/goja"
)

// The date and time helpers. Each takes an optional last argument "GMT"
// (exactly that string) for UTC instead of the local time of Options.Now.
// Ranges are inclusive at both ends and wrap around when the first bound is
// after the second: weekdayRange("FRI", "MON") is Friday to Monday,
// dateRange("DEC", "FEB") December to February, timeRange(22, 6) 22:00 to
// 06:59:59. Names of days and months are upper-case, as in browsers.

var (
	dayNames   = [...]string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
	monthNames = [...]string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
)

// now returns the current time and the arguments without a trailing "GMT",
// in UTC when there was one.
func (v *vm) now(args []goja.Value) (time.Time, []goja.Value) {
	t := v.s.o.Now()
	if n := len(args); n > 0 {
		if s, ok := args[n-1].(goja.String); ok && s.String() == "GMT" {
			return t.UTC(), args[:n-1]
		}
	}
	return t, args
}

func nameIndex(v goja.Value, names []string) int {
	if s, ok := v.(goja.String); ok {
		for i, n := range names {
			if s.String() == n {
				return i
			}
		}
	}
	return -1
}

// inRange reports whether lo <= x <= hi, wrapping around when lo > hi.
func inRange(x, lo, hi int) bool {
	if lo <= hi {
		return lo <= x && x <= hi
	}
	return x >= lo || x <= hi
}

// weekdayRange(wd1 [, wd2] [, "GMT"]): whether today is wd1, or between wd1
// and wd2. An unknown name gives false.
func (v *vm) weekdayRange(call goja.FunctionCall) goja.Value {
	t, args := v.now(call.Arguments)
	if len(args) < 1 {
		return v.rt.ToValue(false)
	}
	d1 := nameIndex(args[0], dayNames[:])
	d2 := d1
	if len(args) == 2 {
		d2 = nameIndex(args[1], dayNames[:])
	}
	if d1 < 0 || d2 < 0 {
		return v.rt.ToValue(false)
	}
	return v.rt.ToValue(inRange(int(t.Weekday()), d1, d2))
}

// timeRange(hour), timeRange(hour1, hour2), timeRange(hour1, min1, hour2,
// min2), timeRange(hour1, min1, sec1, hour2, min2, sec2), each with an
// optional "GMT". One hour is that whole hour; two hours are inclusive
// (8, 17 is 08:00:00 to 17:59:59, as browsers compare hours); with minutes,
// the end's seconds are :59. Browsers do not wrap the two-hour form; this
// does, like the others. Another number of arguments throws, as in
// browsers.
func (v *vm) timeRange(call goja.FunctionCall) goja.Value {
	t, args := v.now(call.Arguments)
	n := make([]float64, len(args))
	for i, a := range args {
		n[i] = a.ToFloat()
		if math.IsNaN(n[i]) {
			return v.rt.ToValue(false)
		}
	}
	h, secs := float64(t.Hour()), float64(t.Hour()*3600+t.Minute()*60+t.Second())
	in := func(x, lo, hi float64) bool {
		if lo <= hi {
			return lo <= x && x <= hi
		}
		return x >= lo || x <= hi
	}
	switch len(n) {
	case 0:
		return v.rt.ToValue(false)
	case 1:
		return v.rt.ToValue(h == n[0])
	case 2:
		return v.rt.ToValue(in(h, n[0], n[1]))
	case 4:
		return v.rt.ToValue(in(secs, n[0]*3600+n[1]*60, n[2]*3600+n[3]*60+59))
	case 6:
		return v.rt.ToValue(in(secs, n[0]*3600+n[1]*60+n[2], n[3]*3600+n[4]*60+n[5]))
	}
	panic(v.rt.NewTypeError("timeRange: bad number of arguments"))
}

// dateArg is one argument of dateRange: a day of the month (a number below
// 32), a year (a number from 32), or a month name.
type dateArg struct {
	kind byte // 'd', 'm', 'y', or 0 for garbage
	n    int  // day 1-31, month 0-11, or year
}

func parseDateArg(a goja.Value) dateArg {
	var f float64
	if s, ok := a.(goja.String); ok {
		if m := nameIndex(a, monthNames[:]); m >= 0 {
			return dateArg{'m', m}
		}
		f = parseIntPrefix(s.String())
	} else {
		f = a.ToFloat()
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return dateArg{}
	case f < 32:
		return dateArg{'d', int(f)}
	case f > 1e6:
		return dateArg{}
	}
	return dateArg{'y', int(f)}
}

// parseIntPrefix is JavaScript's parseInt(s, 10) for the decimal prefix of s.
func parseIntPrefix(s string) float64 {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	n, digits := 0.0, 0
	for ; digits < len(s) && s[digits] >= '0' && s[digits] <= '9'; digits++ {
		n = n*10 + float64(s[digits]-'0')
	}
	if digits == 0 {
		return math.NaN()
	}
	if neg {
		n = -n
	}
	return math.Trunc(n)
}

// dateRange(day), (day1, day2), (month), (month1, month2), (year),
// (year1, year2), (day1, month1, day2, month2), (month1, year1, month2,
// year2), (day1, month1, year1, day2, month2, year2), each with an optional
// "GMT". The first half of the arguments gives the start, the second half
// the end; what a bound leaves out is the current year, January or December,
// and the first or last day of the month, except that two days mean days of
// the current month. Garbage gives false.
func (v *vm) dateRange(call goja.FunctionCall) goja.Value {
	t, args := v.now(call.Arguments)
	if len(args) < 1 {
		return v.rt.ToValue(false)
	}
	ds := make([]dateArg, len(args))
	for i, a := range args {
		if ds[i] = parseDateArg(a); ds[i].kind == 0 {
			return v.rt.ToValue(false)
		}
	}
	cy, cm, cd := t.Year(), int(t.Month())-1, t.Day()
	if len(ds) == 1 {
		d := ds[0]
		return v.rt.ToValue(d.kind == 'd' && d.n == cd || d.kind == 'm' && d.n == cm || d.kind == 'y' && d.n == cy)
	}
	type ymd struct{ y, m, d int }
	lo, hi := ymd{cy, 0, 1}, ymd{cy, 11, 0}
	hiDay := false
	for i, d := range ds {
		b := &lo
		if i >= len(ds)/2 {
			b = &hi
		}
		switch d.kind {
		case 'd':
			b.d = d.n
			hiDay = hiDay || b == &hi
		case 'm':
			b.m = d.n
		case 'y':
			b.y = d.n
		}
	}
	if len(ds) == 2 && ds[0].kind == 'd' {
		lo.m, hi.m = cm, cm
	}
	last := time.Date(hi.y, time.Month(hi.m+2), 0, 0, 0, 0, 0, time.UTC).Day()
	if !hiDay || hi.d > last {
		hi.d = last
	}
	key := func(x ymd) int { return (x.y*12+x.m)*32 + x.d }
	return v.rt.ToValue(inRange(key(ymd{cy, cm, cd}), key(lo), key(hi)))
}
