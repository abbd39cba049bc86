package testnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// CurlTimes runs curl with args (which must include -w '%{http_code}
// %{time_total}\n' and send its bodies elsewhere) in the environment env,
// without ~/.curlrc, and returns curl's own time for each transfer. It
// fails when curl does, with curl's message, or when a transfer's status
// is not 200. Its error never holds the command line, which may hold a
// password.
func CurlTimes(ctx context.Context, curl string, args, env []string) ([]time.Duration, error) {
	cmd := exec.CommandContext(ctx, curl, args...)
	cmd.Env = append(env, "CURL_HOME="+os.DevNull)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("curl: %w", err)
	}
	var times []time.Duration
	for line := range strings.Lines(string(out)) {
		code, secs, _ := strings.Cut(strings.TrimSpace(line), " ")
		s, err := strconv.ParseFloat(secs, 64)
		if code != "200" || err != nil {
			return nil, fmt.Errorf("curl printed %q, want status 200 and its time", line)
		}
		times = append(times, time.Duration(s*float64(time.Second)))
	}
	return times, nil
}
