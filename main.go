// Command mimecast-ure is a user-risk plugin host for Mimecast: it lists a
// tenant's users, scores them from awareness-training grades and security
// events, and acts on risky users through group membership.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

//go:embed manifest.json
var manifestJSON []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a specific exit code (e.g. 1 from audit verify).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	getenv = fileSecrets(getenv)
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, rest, getenv, stdout, stderr)
	case "demo":
		err = runDemo(ctx, rest, getenv, stdout, stderr)
	case "emulator":
		err = runEmulator(ctx, rest, getenv, stdout)
	case "okta-emulator":
		err = runOktaEmulator(ctx, rest, getenv, stdout)
	case "token":
		err = runToken(ctx, rest, getenv, stdout)
	case "audit":
		err = runAudit(ctx, rest, getenv, stdout)
	case "rotate-master-key":
		err = runRotate(ctx, rest, getenv, stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s\n", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(stderr, ee.msg)
			}
			return ee.code
		}
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

const usage = `usage: mimecast-ure <command> [flags]

commands:
  serve              run the server (--addr, --data, --master-key-file, --tls-cert, --tls-key)
  demo               the server plus a built-in Mimecast emulator and a "demo" configuration
  emulator           the Mimecast emulator alone (--addr, --users, --seed, --latency)
  okta-emulator      the Okta emulator alone (--addr)
  token              create|list|revoke API tokens offline (--data)
  audit verify       check the audit chain (--data); exit 1 if an entry was changed or removed
  rotate-master-key  re-seal every stored secret under a new master key (--data)

Every flag can also be set as URE_<FLAG> (e.g. URE_ADDR, URE_DATA).`
