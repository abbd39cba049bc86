package proxyauth_test

import "time"

// generous bounds every wait in these tests for something that must
// happen (a proxy or an origin that must answer, a goroutine that must
// end): long enough that a machine busy with other work still passes, so
// that the tests check correctness, never speed. A timeout that is itself
// under test (a black-holed proxy must time out) may be short instead,
// when the outcome does not depend on the machine's speed.
const generous = time.Minute

// expiring is a timeout under test that must expire against a peer that
// stalls, in a test where the same timeout must not expire for a peer that
// answers at once (a fallback proxy, the head of an answer whose body
// stalls): short enough to keep such tests quick, long enough for a busy
// machine to answer within it.
const expiring = 5 * time.Second
