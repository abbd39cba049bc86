package proxyauth

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSessionTokens(t *testing.T) {
	if got := tokenBase("abc123"); got != "abc123" {
		t.Errorf("tokenBase(abc123) = %q", got)
	}
	if got := tokenBase(strings.Repeat("a", 32)); got != strings.Repeat("a", 32) {
		t.Errorf("a 32-letter id: %q", got)
	}
	// Ids that a gateway would not take become 16 hex digits, the same for
	// the same id, different for different ones.
	for _, id := range []string{"user@example.com", "a-b", strings.Repeat("a", 33), "ü"} {
		got := tokenBase(id)
		if len(got) != 16 || !plainToken(got) || tokenBase(id) != got {
			t.Errorf("tokenBase(%q) = %q, want the same 16 hex digits each time", id, got)
		}
	}
	if tokenBase("a-b") == tokenBase("a-c") {
		t.Error("two ids share a base")
	}
	// Each start and move gets a token of letters and digits that no
	// other had, in this pool or another.
	s1, s2 := newSessions(time.Minute, true), newSessions(time.Minute, true)
	seen := map[string]bool{}
	for range 1000 {
		for _, s := range []*sessions{s1, s2} {
			tok := s.newToken("abc123")
			if !strings.HasPrefix(tok, "abc123x") || !plainToken(strings.TrimPrefix(tok, "abc123x")) || seen[tok] {
				t.Fatalf("token %q: want abc123x and letters or digits, never seen before", tok)
			}
			seen[tok] = true
		}
	}
}

func TestSessionTemplate(t *testing.T) {
	tmpl, err := parseSessionTemplate("customer-{user}-sessid-{session}")
	if err != nil {
		t.Fatal(err)
	}
	if got := tmpl.username("alice", "abc123x1"); got != "customer-alice-sessid-abc123x1" {
		t.Errorf("username = %q", got)
	}
	if tmpl, err := parseSessionTemplate(""); tmpl != nil || err != nil {
		t.Errorf("empty template: %v, %v; want none", tmpl, err)
	}
	for _, raw := range []string{"{user}-static", "{user}-{sess}-{session}", "{user}:{session}", "a{session}}", "{session}\r\n"} {
		_, err := parseSessionTemplate(raw)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "Pool.SessionUsername" {
			t.Errorf("parseSessionTemplate(%q) = %v, want a *ConfigError for Pool.SessionUsername", raw, err)
		}
	}
}

func TestSessionIDs(t *testing.T) {
	for _, id := range []string{"", strings.Repeat("x", maxSessionID+1)} {
		var ce *ConfigError
		if err := checkSessionID(id); !errors.As(err, &ce) || ce.Field != "WithSession" {
			t.Errorf("checkSessionID(%d bytes) = %v, want a *ConfigError", len(id), err)
		}
	}
	if err := checkSessionID(strings.Repeat("x", maxSessionID)); err != nil {
		t.Error(err)
	}
}

func TestSessionsTTL(t *testing.T) {
	s := newSessions(10*time.Minute, true)
	t0 := time.Unix(1_000_000, 0)
	m1, m2 := &member{index: 1}, &member{index: 2}

	a, expired := s.acquire("a", t0)
	if expired != nil {
		t.Fatal("a new session expired")
	}
	_, tok0 := s.exitOf(a)
	if b := s.bind(a, m1, false); b.from != nil || b.moved {
		t.Errorf("first bind: %+v", b)
	}
	// Used within the TTL: the same session, the same exit and token.
	again, expired := s.acquire("a", t0.Add(9*time.Minute))
	if again != a || expired != nil {
		t.Fatal("a session in use was replaced")
	}
	if exit, tok := s.exitOf(again); exit != m1 || tok != tok0 {
		t.Errorf("exit %v, token %q; want m1 and %q", exit, tok, tok0)
	}
	// A move to another exit, or a forced one on the same proxy (a
	// gateway's), gets a new token.
	s.markBanned(a, m1)
	if b := s.bind(a, m2, false); b.from != m1 || !b.moved || !b.ban || b.moves != 1 {
		t.Errorf("move from a banned exit: %+v", b)
	}
	_, tok1 := s.exitOf(a)
	if b := s.bind(a, m2, true); b.from != m2 || !b.moved || b.ban || b.moves != 2 {
		t.Errorf("forced move: %+v", b)
	}
	_, tok2 := s.exitOf(a)
	if tok1 == tok0 || tok2 == tok1 || a.moves != 2 {
		t.Errorf("tokens %q, %q, %q after %d moves: want each new", tok0, tok1, tok2, a.moves)
	}
	if b := s.bind(a, m2, false); b.moved {
		t.Error("binding the exit it has is no move")
	}
	// Unused for longer than the TTL: a new session, with no exit and a
	// new token.
	fresh, expired := s.acquire("a", t0.Add(9*time.Minute+10*time.Minute+time.Second))
	if fresh == a || expired != a {
		t.Fatal("an unused session was not ended")
	}
	if exit, tok := s.exitOf(fresh); exit != nil || tok == tok2 {
		t.Errorf("after expiry: exit %v, token %q; want none and a new token", exit, tok)
	}
	if b := s.bind(fresh, m1, false); b.moved || b.prev != m2 {
		t.Errorf("the first exit after expiry: %+v, want the old exit as prev", b)
	}
}

func TestSessionsSwept(t *testing.T) {
	s := newSessions(time.Minute, true)
	t0 := time.Unix(1_000_000, 0)
	for i := range 5000 {
		s.acquire("old"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+itoa(i), t0)
	}
	if n := s.live(); n != 5000 {
		t.Fatalf("%d live sessions, want 5000", n)
	}
	// Lookups long after the TTL sweep every shard in turn, whichever
	// they land on.
	later := t0.Add(time.Hour)
	for i := range 4 * sweepEvery * sessionShards {
		s.acquire("new"+itoa(i%100), later)
	}
	if n := s.live(); n != 100 {
		t.Errorf("%d live sessions after the sweeps, want the 100 in use", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestBansCooldown(t *testing.T) {
	var b bans
	t0 := time.Unix(1_000_000, 0)
	base, maxD := time.Minute, 10*time.Minute
	if b.benched("a.example", t0) {
		t.Fatal("benched before any ban")
	}
	until, _ := b.add("a.example", t0, base, maxD)
	if want := t0.Add(time.Minute); !until.Equal(want) {
		t.Errorf("first ban until %v, want %v", until, want)
	}
	if !b.benched("a.example", t0.Add(59*time.Second)) || b.benched("b.example", t0) {
		t.Error("a ban is for its host only")
	}
	if b.benched("a.example", t0.Add(time.Minute)) {
		t.Error("still benched after the cooldown")
	}
	// Bans in a row double the cooldown, up to the cap.
	now := t0.Add(2 * time.Minute)
	for i, want := range []time.Duration{2, 4, 8, 10, 10} {
		until, _ := b.add("a.example", now, base, maxD)
		if got := until.Sub(now); got != want*time.Minute {
			t.Errorf("ban %d: cooldown %v, want %v", i+2, got, want*time.Minute)
		}
		now = until
	}
	// Long after the last one, the count starts again.
	now = now.Add(time.Hour)
	if until, total := b.add("a.example", now, base, maxD); until.Sub(now) != time.Minute || total != 7 {
		t.Errorf("after a long pause: cooldown %v, %d bans; want 1m and 7", until.Sub(now), total)
	}
	b.count("a.example", now)
	if b.benched("a.example", now.Add(2*time.Minute)) {
		t.Error("a counted ban benched the host")
	}
	if got := b.counts()["a.example"]; got != 8 {
		t.Errorf("%d bans counted for a.example, want 8", got)
	}
}

func TestBansBounded(t *testing.T) {
	var b bans
	t0 := time.Unix(1_000_000, 0)
	for i := range maxBannedHosts + 100 {
		b.add(itoa(i)+".example", t0.Add(time.Duration(i)), time.Minute, time.Hour)
	}
	if n := len(b.byHost); n > maxBannedHosts {
		t.Errorf("%d hosts kept, want at most %d", n, maxBannedHosts)
	}
}
