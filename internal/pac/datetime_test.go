package pac

import (
	"context"
	"testing"
	"time"
)

// Local time is UTC+10 here, so that "GMT" visibly differs: Wednesday
// 2025-01-15 03:30:15 local is Tuesday 2025-01-14 17:30:15 UTC.
var (
	zone   = time.FixedZone("UTC+10", 10*3600)
	wedAM  = time.Date(2025, time.January, 15, 3, 30, 15, 0, zone)
	summer = time.Date(2025, time.July, 4, 12, 0, 0, 0, time.UTC)
)

func runAt(t *testing.T, now time.Time, cases []exprCase) {
	t.Helper()
	runExprs(t, Options{Now: func() time.Time { return now }}, cases)
}

func TestWeekdayRange(t *testing.T) {
	runAt(t, wedAM, []exprCase{
		{`weekdayRange("WED")`, `boolean:true`},
		{`weekdayRange("TUE")`, `boolean:false`},
		{`weekdayRange("TUE", "GMT")`, `boolean:true`},
		{`weekdayRange("WED", "GMT")`, `boolean:false`},
		{`weekdayRange("MON", "FRI")`, `boolean:true`},
		{`weekdayRange("THU", "FRI")`, `boolean:false`},
		{`weekdayRange("FRI", "MON")`, `boolean:false`},       // wraps: Fri..Mon
		{`weekdayRange("SAT", "WED")`, `boolean:true`},        // wraps through Sun
		{`weekdayRange("WED", "TUE", "GMT")`, `boolean:true`}, // Tue is in Wed..Tue
		{`weekdayRange("MON", "TUE", "GMT")`, `boolean:true`},
		{`weekdayRange("wed")`, `boolean:false`}, // upper-case only, as browsers
		{`weekdayRange("XYZ", "FRI")`, `boolean:false`},
		{`weekdayRange()`, `boolean:false`},
		{`weekdayRange("GMT")`, `boolean:false`},
	})
}

func TestDateRange(t *testing.T) {
	runAt(t, wedAM, []exprCase{
		{`dateRange(15)`, `boolean:true`},
		{`dateRange(14)`, `boolean:false`},
		{`dateRange(14, "GMT")`, `boolean:true`},
		{`dateRange("15")`, `boolean:true`},
		{`dateRange("JAN")`, `boolean:true`},
		{`dateRange("FEB")`, `boolean:false`},
		{`dateRange(2025)`, `boolean:true`},
		{`dateRange(2024)`, `boolean:false`},
		{`dateRange(1, 15)`, `boolean:true`},
		{`dateRange(16, 31)`, `boolean:false`},
		{`dateRange(20, 15)`, `boolean:true`}, // wraps within the month
		{`dateRange("JAN", "MAR")`, `boolean:true`},
		{`dateRange("FEB", "MAR")`, `boolean:false`},
		{`dateRange("DEC", "FEB")`, `boolean:true`}, // wraps over the new year
		{`dateRange("MAR", "DEC")`, `boolean:false`},
		{`dateRange(2020, 2030)`, `boolean:true`},
		{`dateRange(2026, 2030)`, `boolean:false`},
		{`dateRange(1, "JAN", 15, "JAN")`, `boolean:true`},
		{`dateRange(1, "JAN", 14, "JAN")`, `boolean:false`},
		{`dateRange(24, "DEC", 20, "JAN")`, `boolean:true`},
		{`dateRange(16, "JAN", 24, "DEC")`, `boolean:false`},
		{`dateRange("DEC", 2024, "FEB", 2025)`, `boolean:true`},
		{`dateRange("FEB", 2025, "MAR", 2025)`, `boolean:false`},
		{`dateRange(1, "JAN", 2025, 15, "JAN", 2025)`, `boolean:true`},
		{`dateRange(16, "JAN", 2025, 1, "FEB", 2025)`, `boolean:false`},
		{`dateRange(15, "JAN", 2025, 15, "JAN", 2025, "GMT")`, `boolean:false`},
		{`dateRange(14, "JAN", 2025, 14, "JAN", 2025, "GMT")`, `boolean:true`},
		{`dateRange("Jan")`, `boolean:false`},
		{`dateRange("XYZ", "FEB")`, `boolean:false`},
		{`dateRange()`, `boolean:false`},
	})
	// The end of a month range is the last day of that month (Firefox's
	// code overflows Dec 31 into March for "FEB").
	runAt(t, time.Date(2025, time.March, 2, 12, 0, 0, 0, time.UTC), []exprCase{
		{`dateRange("JAN", "FEB")`, `boolean:false`},
		{`dateRange("FEB", "MAR")`, `boolean:true`},
	})
	runAt(t, time.Date(2024, time.February, 29, 12, 0, 0, 0, time.UTC), []exprCase{
		{`dateRange("JAN", "FEB")`, `boolean:true`},
	})
}

func TestTimeRange(t *testing.T) {
	runAt(t, wedAM, []exprCase{
		{`timeRange(3)`, `boolean:true`},
		{`timeRange(4)`, `boolean:false`},
		{`timeRange(17, "GMT")`, `boolean:true`},
		{`timeRange(3, "GMT")`, `boolean:false`},
		{`timeRange("3")`, `boolean:true`},
		{`timeRange(0, 3)`, `boolean:true`},
		{`timeRange(4, 8)`, `boolean:false`},
		{`timeRange(22, 6)`, `boolean:true`}, // wraps over midnight
		{`timeRange(8, 17, "GMT")`, `boolean:true`},
		{`timeRange(3, 30, 3, 31)`, `boolean:true`},
		{`timeRange(3, 31, 4, 0)`, `boolean:false`},
		{`timeRange(3, 0, 3, 30)`, `boolean:true`}, // end seconds are :59
		{`timeRange(23, 0, 3, 30)`, `boolean:true`},
		{`timeRange(3, 30, 15, 3, 30, 15)`, `boolean:true`},
		{`timeRange(3, 30, 16, 3, 30, 20)`, `boolean:false`},
		{`timeRange(0, 0, 0, 0, 0, 30)`, `boolean:false`},
		{`timeRange(17, 0, 0, 17, 59, 59, "GMT")`, `boolean:true`},
		{`timeRange("x")`, `boolean:false`},
		{`timeRange()`, `boolean:false`},
	})
	runAt(t, summer, []exprCase{{`timeRange(12, 0, 0, 12, 0, 0)`, `boolean:true`}})
	s := mustCompile(t, evalScript, Options{})
	_, err := s.FindProxy(context.Background(), `timeRange(1, 2, 3)`, "")
	if e := asError(t, err); e.Kind != KindThrow {
		t.Errorf("timeRange(1, 2, 3): %v, want KindThrow", e)
	}
}

// The script's own Date uses Options.Now too.
func TestScriptDateUsesNow(t *testing.T) {
	runAt(t, summer, []exprCase{{`new Date().getUTCFullYear() * 100 + new Date().getUTCMonth()`, `number:202506`}})
}
