// Command mimecast-ure is a user-risk plugin host for Mimecast: it lists a
// tenant's users, scores them from awareness-training grades and security
// events, and acts on risky users through group membership.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s\n", cmd, usage)
		return 2
	}
	_ = rest
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

const usage = `usage: mimecast-ure <command> [flags]

commands:
  serve              run the server (--addr, --data, --tls-cert, --tls-key)
  demo               the server plus a built-in Mimecast emulator and a "demo" configuration
  emulator           the Mimecast emulator alone (--addr, --users, --seed, --latency)
  okta-emulator      the Okta emulator alone
  token              create|list|revoke API tokens offline (--data)
  audit verify       check the audit chain (--data)
  rotate-master-key  re-seal every stored secret under a new master key (--data)`
