package checkcmd

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth/internal/testnet"
)

// fleet starts healthy open proxies and holes black holes, and returns the
// lines of a -f file (every tenth one a black hole when there are 900 and
// 100), with the target to check.
func fleet(t testing.TB, healthy, holes int) (list, healthyList []string, target string) {
	t.Helper()
	origin := newOrigin(t, false)
	total := healthy + holes
	every := total / max(holes, 1)
	for len(list) < total {
		if holes > 0 && len(list)%every == every-1 {
			list = append(list, "http://"+testnet.Unreachable(t))
			holes--
			continue
		}
		u := openProxy(t).URL
		list, healthyList = append(list, u), append(healthyList, u)
	}
	return list, healthyList, origin.URL + "/"
}

func TestThousandProxies(t *testing.T) {
	list, _, target := fleet(t, 900, 100)
	file := writeFile(t, "proxies.txt", "# 1,000 proxies\n"+strings.Join(list, "\n")+"\n")
	got := runMain(t, Env{}, "-json", "-concurrency", "50", "-timeout", "2s", "-target", target, "-f", file)
	if got.code != ExitFailed {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", got.code, got.stderr)
	}
	rows := decodeLines(t, got.stdout)
	if len(rows) != len(list) {
		t.Fatalf("%d results, want %d", len(rows), len(list))
	}
	ok, failed := 0, 0
	for i, row := range rows {
		if row["proxy"] != list[i] {
			t.Fatalf("line %d: proxy %v, want %s (the list's order)", i+1, row["proxy"], list[i])
		}
		hole := i%10 == 9
		switch {
		case !hole && row["ok"] == true && row["status"] == 200.0:
			ok++
		case hole && row["ok"] == false && row["layer"] == "network" && row["addr"] == nil &&
			strings.HasPrefix(row["summary"].(string), "no TCP connection to the proxy within 2s"):
			failed++
		default:
			t.Errorf("line %d (black hole: %v): %v", i+1, hole, row)
		}
	}
	if ok != 900 || failed != 100 {
		t.Errorf("%d ok and %d failed, want 900 and 100", ok, failed)
	}
	if !strings.Contains(got.stderr, "1000 proxies: 900 ok, 100 failed") {
		t.Errorf("stderr:\n%s\nwant the count", got.stderr)
	}
}

// notifyWriter is a syncBuffer that closes first on its first write.
type notifyWriter struct {
	syncBuffer
	once  sync.Once
	first chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	w.once.Do(func() { close(w.first) })
	return n, err
}

func TestStreamAndInterrupt(t *testing.T) {
	// A proxy that answers and a black hole that would hold the check
	// for a minute: the first row must come out while the second is
	// pending, and an interruption then ends the run with what is known.
	good := openProxy(t)
	hole := "http://" + testnet.Unreachable(t)
	origin := newOrigin(t, false)
	for _, asJSON := range []bool{false, true} {
		t.Run(fmt.Sprint("json=", asJSON), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stdout := &notifyWriter{first: make(chan struct{})}
			var stderr syncBuffer
			args := []string{"-timeout", "1m", "-target", origin.URL, good.URL, hole}
			if asJSON {
				args = append([]string{"-json"}, args...)
			}
			done := make(chan int, 1)
			go func() { done <- Main(ctx, args, Env{Stdout: stdout, Stderr: &stderr}) }()
			select {
			case <-stdout.first:
			case code := <-done:
				t.Fatalf("Main returned %d before writing anything", code)
			case <-time.After(30 * time.Second):
				t.Fatal("no row within 30s while the black hole is pending")
			}
			cancel()
			var code int
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Main did not return within 30s of the interruption")
			}
			if code != ExitFailed {
				t.Errorf("exit status %d, want 1", code)
			}
			out := stdout.String()
			summary := "2 proxies: 1 ok, 0 failed, 1 not checked (interrupted)"
			if asJSON {
				rows := decodeLines(t, out)
				if len(rows) != 1 || rows[0]["proxy"] != good.URL || rows[0]["ok"] != true {
					t.Errorf("results %v, want the one known", rows)
				}
				if !strings.Contains(stderr.String(), summary) {
					t.Errorf("stderr:\n%s\nwant %q", stderr.String(), summary)
				}
			} else {
				rows := lines(out)
				if len(rows) != 3 || !strings.HasPrefix(rows[1], good.URL+" ") || rows[2] != summary {
					t.Errorf("table:\n%s\nwant the header, the known row and %q", out, summary)
				}
			}
		})
	}
}

// BenchmarkProxycheck1000 times a run over 1,000 proxies of which 100 are
// black holes (-concurrency 50 -timeout 2s), and one over the 900 healthy
// ones alone. The black holes cost at least (100/50) x 2s = 4s.
func BenchmarkProxycheck1000(b *testing.B) {
	list, healthy, target := fleet(b, 900, 100)
	all := writeFile(b, "all.txt", strings.Join(list, "\n")+"\n")
	good := writeFile(b, "healthy.txt", strings.Join(healthy, "\n")+"\n")
	var tAll, tHealthy time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		got := runMain(b, Env{}, "-json", "-concurrency", "50", "-timeout", "2s", "-target", target, "-f", all)
		tAll += time.Since(start)
		if got.code != ExitFailed || len(lines(got.stdout)) != 1000 {
			b.Fatalf("1,000 proxies: exit status %d, %d results; stderr:\n%s", got.code, len(lines(got.stdout)), got.stderr)
		}
		start = time.Now()
		got = runMain(b, Env{}, "-json", "-concurrency", "50", "-timeout", "2s", "-target", target, "-f", good)
		tHealthy += time.Since(start)
		if got.code != ExitOK || len(lines(got.stdout)) != 900 {
			b.Fatalf("900 healthy proxies: exit status %d, %d results; stderr:\n%s", got.code, len(lines(got.stdout)), got.stderr)
		}
	}
	b.ReportMetric(tAll.Seconds()/float64(b.N), "s/1000-with-100-holes")
	b.ReportMetric(tHealthy.Seconds()/float64(b.N), "s/900-healthy")
}

// TestCommandInterrupt sends SIGINT to the real binary while a black hole
// holds a check: it prints what it knows and exits 1.
func TestCommandInterrupt(t *testing.T) {
	bin := buildCommand(t)
	origin := newOrigin(t, false)
	good := openProxy(t)
	cmd := command(bin, nil, "-timeout", "1m", "-target", origin.URL, good.URL, "http://"+testnet.Unreachable(t))
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	type line struct {
		s   string
		err error
	}
	read := make(chan line)
	go func() {
		r := bufio.NewReader(out)
		for {
			s, err := r.ReadString('\n')
			read <- line{s, err}
			if err != nil {
				return
			}
		}
	}()
	next := func() line {
		select {
		case l := <-read:
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("no line within 30s")
		}
		return line{}
	}
	var got []string
	for len(got) < 2 { // the header and the good proxy's row
		l := next()
		if l.err != nil {
			t.Fatalf("stdout ended after %q: %v", got, l.err)
		}
		got = append(got, l.s)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for {
		l := next()
		got = append(got, l.s)
		if l.err != nil {
			break
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	text := strings.Join(got, "")
	if !strings.HasPrefix(got[1], good.URL+" ") || !strings.HasSuffix(text, "2 proxies: 1 ok, 0 failed, 1 not checked (interrupted)\n") {
		t.Errorf("stdout:\n%s\nwant the good proxy's row and the count", text)
	}
}
