package checkcmd

import (
	"context"
	"fmt"

	"github.com/proxyauth/proxyauth"
)

// password returns the password for -user: $PROXYCHECK_PASSWORD, or what
// the user types at a prompt on stderr when stdin is a terminal. It is
// never taken from the command line, where other users of the machine can
// read it.
func password(ctx context.Context, user string, env Env) (string, error) {
	if p := env.Getenv(PasswordEnv); p != "" {
		return p, nil
	}
	if !env.StdinTerminal || env.ReadPassword == nil {
		return "", configf("-user %s needs a password: set %s, or run proxycheck on a terminal to be asked for it "+
			"(it is never taken from the command line)", user, PasswordEnv)
	}
	fmt.Fprintf(env.Stderr, "Password for %s: ", user)
	type answer struct {
		p   []byte
		err error
	}
	got := make(chan answer, 1)
	go func() {
		p, err := env.ReadPassword()
		got <- answer{p, err}
	}()
	select {
	case a := <-got:
		fmt.Fprintln(env.Stderr) // the Enter was not echoed
		if a.err != nil {
			return "", configf("reading the password: %v", a.err)
		}
		return string(a.p), nil
	case <-ctx.Done():
		// The read goes on until the process exits; the command restores
		// the terminal.
		fmt.Fprintln(env.Stderr)
		return "", fmt.Errorf("interrupted while waiting for the password")
	}
}

// credentialsFunc gives user and pass to every proxy that asks, and says
// that it has no others when a proxy refuses them, so that the check
// reports the refusal.
func credentialsFunc(user, pass string) proxyauth.CredentialsFunc {
	return func(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		if r.Rejected {
			return proxyauth.Credentials{}, proxyauth.ErrNoNewCredentials
		}
		return proxyauth.Credentials{Username: user, Password: pass}, nil
	}
}
