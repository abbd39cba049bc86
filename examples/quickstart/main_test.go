package main

import "testing"

// TestRun runs the quickstart, which checks each of its steps.
func TestRun(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
