package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mimecast-ure/internal/oktatest"
)

// Demo defaults of the Okta emulator.
const (
	oktaDemoClientID = "0oademoclient0000001"
	oktaDemoGroups   = "Mimecast Risky Senders - Malware,Mimecast Risky Senders - URL,Mimecast Risky Senders - Data"
)

// runOktaEmulator is `mimecast-ure okta-emulator`: it serves the Okta
// emulator until ctx is done. It registers one service app whose private
// key (an emulator test key, generated at start) is written to --key-out,
// creates the demo groups, and creates users on first lookup by email. A
// flag not given on the command line is read from URE_<FLAG>.
func runOktaEmulator(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("okta-emulator", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:9091", "listen address")
	clientID := fs.String("client-id", oktaDemoClientID, "client id of the demo service app")
	keyOut := fs.String("key-out", "", "file to write the demo app's private key (PEM) to (default: a new file in the temp dir)")
	groups := fs.String("groups", oktaDemoGroups, "comma-separated names of the groups to create")
	users := fs.String("users", "", "comma-separated logins to create up front (others are created on first lookup)")
	dpop := fs.Bool("dpop", false, "require DPoP proofs on token requests")
	rateLimit := fs.Int("rate-limit", 600, "requests per minute per endpoint")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}

	key, err := oktatest.GenerateRSAKey()
	if err != nil {
		return fmt.Errorf("okta-emulator: generate key: %w", err)
	}
	path := *keyOut
	if path == "" {
		f, err := os.CreateTemp("", "mimecast-ure-okta-demo-*.pem")
		if err != nil {
			return fmt.Errorf("okta-emulator: key file: %w", err)
		}
		path = f.Name()
		f.Close()
	}
	if err := os.WriteFile(path, []byte(oktatest.PKCS1PEM(key)), 0o600); err != nil {
		return fmt.Errorf("okta-emulator: write key: %w", err)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}

	em := oktatest.New(oktatest.Options{RequireDPoP: *dpop, RateLimit: *rateLimit, AutoUsers: true})
	em.RegisterClient(*clientID, key.Public())
	var made []oktatest.Group
	for _, name := range strings.Split(*groups, ",") {
		if name = strings.TrimSpace(name); name != "" {
			made = append(made, em.AddGroup(oktatest.Group{Name: name}))
		}
	}
	for _, login := range strings.Split(*users, ",") {
		if login = strings.TrimSpace(login); login != "" {
			em.AddUser(oktatest.User{Login: strings.ToLower(login)})
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("okta-emulator: listen on %s: %w", *addr, err)
	}
	base := "http://" + ln.Addr().String()
	hs := &http.Server{Handler: em, ReadHeaderTimeout: 10 * time.Second}
	// Emulator test credentials: printing where they are is the point.
	fmt.Fprintf(stdout, "okta emulator listening on %s\n", base)
	fmt.Fprintf(stdout, "  client id: %s  (dpop required: %v)\n", *clientID, *dpop)
	fmt.Fprintf(stdout, "  private key (emulator test key): %s\n", path)
	for _, g := range made {
		fmt.Fprintf(stdout, "  group %s  %q\n", g.ID, g.Name)
	}
	settings, _ := json.Marshal(map[string]any{"base_url": base, "client_id": *clientID, "private_key": "<contents of " + path + ">", "dpop": *dpop})
	fmt.Fprintf(stdout, "  controls.okta: %s\n", settings)

	return serveUntilDone(ctx, hs, ln, "okta-emulator")
}
