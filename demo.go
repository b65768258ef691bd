package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/internal/oktatest"
	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// demoOktaClient is the service app the demo registers with its Okta emulator.
const demoOktaClient = "0oademoclient0000001"

// demoConfiguration is the configuration demo creates against its
// emulators: grades, security events with event scoring, and
// evidence-based controls into two Okta groups and one Mimecast group.
func demoConfiguration(emulatorURL, domain, oktaURL, oktaKey string) plugin.Configuration {
	return plugin.Configuration{
		Name:         "demo",
		SyncInterval: plugin.Duration(15 * time.Minute),
		Mimecast: plugin.MimecastSettings{
			BaseURL:   emulatorURL,
			Auth:      plugin.AuthLegacy,
			AppID:     mimecasttest.DefaultAppID,
			AppKey:    mimecasttest.DefaultAppKey,
			AccessKey: mimecasttest.DefaultAccessKey,
			SecretKey: mimecasttest.DefaultSecretKey,
		},
		Events: &plugin.EventSettings{Enabled: true, Scoring: true},
		Controls: &plugin.ControlSettings{
			Enabled:         true,
			InternalDomains: []string{domain},
			Okta:            &plugin.OktaSettings{BaseURL: oktaURL, ClientID: demoOktaClient, PrivateKey: oktaKey},
			Targets: map[string]plugin.ControlTarget{
				"malicious_file_sent":      {OktaGroup: "Risky senders"},
				"malicious_url_sent":       {OktaGroup: "Risky senders"},
				"content_examination_sent": {MimecastGroup: "DLP watch"},
			},
		},
	}
}

// startDemoOkta serves an Okta emulator with the demo's service app and
// target group on a loopback port, and returns its URL and the app's key.
func startDemoOkta() (url, privateKey string, stop func(), err error) {
	key, err := oktatest.GenerateRSAKey()
	if err != nil {
		return "", "", nil, fmt.Errorf("okta emulator key: %w", err)
	}
	em := oktatest.New(oktatest.Options{AutoUsers: true})
	em.RegisterClient(demoOktaClient, key.Public())
	em.AddGroup(oktatest.Group{Name: "Risky senders"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, fmt.Errorf("okta emulator listen: %w", err)
	}
	srv := &http.Server{Handler: em, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), oktatest.PKCS1PEM(key), func() { _ = srv.Close() }, nil
}

// runDemo is `mimecast-ure demo`: the emulator in-process, the server on
// top of it, a configuration "demo" and an admin token printed with
// ready-to-paste curl commands.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var cfg serverConfig
	cfg.register(fs, "")
	users := fs.Int("users", 1000, "synthetic tenant size")
	seed := fs.Int64("seed", 1, "synthetic tenant seed")
	latency := fs.Duration("latency", 0, "added latency per emulated Mimecast call")
	emuAddr := fs.String("emulator-addr", "127.0.0.1:0", "where the built-in emulator listens")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if cfg.Data == "" {
		dir, err := os.MkdirTemp("", "mimecast-ure-demo-")
		if err != nil {
			return fmt.Errorf("demo data directory: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.Data = dir
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}

	emu := mimecasttest.New(mimecasttest.Options{Users: *users, Seed: *seed, Latency: *latency})
	eln, err := net.Listen("tcp", *emuAddr)
	if err != nil {
		return fmt.Errorf("emulator listen: %w", err)
	}
	esrv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = esrv.Serve(eln) }()
	defer esrv.Close()
	emuURL := "http://" + eln.Addr().String()
	emu.CreateGroup("DLP watch")
	oktaURL, oktaKey, stopOkta, err := startDemoOkta()
	if err != nil {
		return err
	}
	defer stopOkta()

	// The demo's admin token is printed even when set through the
	// environment, so the curl lines work as shown.
	a, err := startApp(ctx, cfg, getenv, log, mimecast.Options{})
	if err != nil {
		return err
	}
	token := a.AdminToken
	if token == "" {
		token = getenv("URE_ADMIN_TOKEN")
	}
	if err := ensureDemoConfiguration(ctx, a.service, demoConfiguration(emuURL, emu.Domain(), oktaURL, oktaKey)); err != nil {
		_ = a.service.Close()
		_ = a.store.Close()
		return err
	}
	if token == "" {
		token = "<your admin token>"
	}
	fmt.Fprintf(stdout, `
mimecast-ure demo is running.
  server:    %[1]s
  emulator:  %[2]s (%[3]d synthetic users, seed %[4]d); Okta emulator: %[7]s
  admin token (shown once): %[5]s

Try:
  export URE=%[1]s TOKEN=%[5]s
  curl -s -X POST -H "Authorization: Bearer $TOKEN" $URE/api/v1/configurations/demo/fetch-records | head -c 300; echo
  curl -s -X POST -H "Authorization: Bearer $TOKEN" $URE/api/v1/configurations/demo/fetch-scores -d '{"records":[]}' | head -c 300; echo
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: demo-1" $URE/api/v1/configurations/demo/execute-action \
    -d '{"records":[{"uid":"%[6]s"}],"action":{"label":"Add to Group","value":"add","parameters":{"group":"create","name":"Risky users"}}}'

Stop with Ctrl-C.
`, a.URL, emuURL, *users, *seed, token, demoUser(emu), oktaURL)
	return a.Serve(ctx)
}

// ensureDemoConfiguration creates the demo configuration, or points an
// existing one (a reused --data) at this run's emulator.
func ensureDemoConfiguration(ctx context.Context, svc *plugin.Service, c plugin.Configuration) error {
	_, err := svc.CreateConfiguration(ctx, "demo", c)
	if plugin.ErrorCode(err) == plugin.ECONFLICT {
		_, err = svc.UpdateConfiguration(ctx, "demo", c.Name, c)
	}
	if err != nil {
		return fmt.Errorf("create demo configuration: %w", err)
	}
	if err := svc.TriggerSync(ctx, c.Name); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("first sync: %w", err)
	}
	return nil
}

func demoUser(emu *mimecasttest.Server) string {
	if us := emu.Users(); len(us) > 0 {
		return us[0].Email
	}
	return "user@example.com"
}
