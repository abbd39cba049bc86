// Package interop holds tests of proxyauth against real proxy software:
// squid, tinyproxy and microsocks, started on loopback by the tests.
package interop
