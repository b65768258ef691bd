package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"mimecast-ure/internal/mimecasttest"
)

// runEmulator is `mimecast-ure emulator`: it serves the Mimecast emulator
// until ctx is done, then shuts down gracefully. A flag not given on the
// command line is read from URE_<FLAG> (e.g. URE_ADDR, URE_APP_ID).
func runEmulator(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	users := fs.Int("users", 200, "number of synthetic users")
	seed := fs.Int64("seed", 1, "seed of the synthetic tenant")
	latency := fs.Duration("latency", 0, "latency added to every reply")
	domain := fs.String("domain", mimecasttest.DefaultDomain, "the tenant's internal mail domain")
	groups := fs.Int("groups", mimecasttest.DefaultGroups, "number of pre-made profile groups")
	logs := fs.Int("logs", mimecasttest.DefaultLogVolume, "generated records per log kind")
	logWindow := fs.Duration("log-window", mimecasttest.DefaultLogWindow, "span the generated records cover, ending now")
	logAhead := fs.Duration("log-ahead", 0, "keep generating records for this long after start (they arrive as time passes)")
	rateCap := fs.Int("rate-capacity", 0, "per-endpoint rate limit bucket size (0 = off)")
	rateRefill := fs.Duration("rate-refill", time.Second, "time to add one call back to a bucket")
	noAwareness := fs.Bool("no-awareness", false, "omit the Awareness Training package from get-account")
	appID := fs.String("app-id", mimecasttest.DefaultAppID, "API 1.0 application id")
	appKey := fs.String("app-key", mimecasttest.DefaultAppKey, "API 1.0 application key")
	accessKey := fs.String("access-key", mimecasttest.DefaultAccessKey, "API 1.0 access key")
	secretKey := fs.String("secret-key", mimecasttest.DefaultSecretKey, "API 1.0 secret key (standard base64)")
	clientID := fs.String("client-id", mimecasttest.DefaultClientID, "API 2.0 client id")
	clientSecret := fs.String("client-secret", mimecasttest.DefaultClientSecret, "API 2.0 client secret")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *users < 1 {
		return fmt.Errorf("emulator: --users must be at least 1, got %d", *users)
	}
	if _, err := base64.StdEncoding.DecodeString(*secretKey); err != nil {
		return fmt.Errorf("emulator: --secret-key must be standard base64: %w", err)
	}

	srv := mimecasttest.New(mimecasttest.Options{
		Users:              *users,
		Seed:               *seed,
		Domain:             *domain,
		Latency:            *latency,
		Groups:             *groups,
		LogVolume:          map[string]int{mimecasttest.KindURL: *logs, mimecasttest.KindAttachment: *logs, mimecasttest.KindImpersonation: *logs, mimecasttest.KindDLP: *logs},
		LogWindow:          *logWindow + *logAhead,
		LogEnd:             time.Now().UTC().Truncate(time.Second).Add(*logAhead),
		RateLimit:          mimecasttest.RateLimit{Capacity: *rateCap, Refill: *rateRefill},
		NoAwarenessPackage: *noAwareness,
		AppID:              *appID,
		AppKey:             *appKey,
		AccessKey:          *accessKey,
		SecretKey:          *secretKey,
		ClientID:           *clientID,
		ClientSecret:       *clientSecret,
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("emulator: listen on %s: %w", *addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	o := srv.Options()
	// These are emulator test credentials: printing them is the point.
	fmt.Fprintf(stdout, "mimecast emulator listening on http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "  tenant: %d users, seed %d, domain %s, %d groups, %d records per log kind\n", *users, *seed, o.Domain, o.Groups, *logs)
	fmt.Fprintf(stdout, "  API 1.0: app id %s  app key %s  access key %s  secret key %s\n", o.AppID, o.AppKey, o.AccessKey, o.SecretKey)
	fmt.Fprintf(stdout, "  API 2.0: client id %s  client secret %s\n", o.ClientID, o.ClientSecret)
	fmt.Fprintf(stdout, "  stats: GET http://%s%s\n", ln.Addr(), mimecasttest.PathStats)

	return serveUntilDone(ctx, hs, ln, "emulator")
}

// serveUntilDone serves hs on ln until ctx is done, then shuts it down
// gracefully (5 s at most). name prefixes the errors.
func serveUntilDone(ctx context.Context, hs *http.Server, ln net.Listener, name string) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("%s: serve: %w", name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("%s: shutdown: %w", name, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", name, err)
	}
	return nil
}
