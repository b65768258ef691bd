package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// parseFlags parses args into fs, then fills every flag not given on the
// command line from the environment variable URE_<FLAG> (dashes become
// underscores), so `--data` also reads URE_DATA. -h prints the flags and
// returns flag.ErrHelp, which run turns into exit 0.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := "URE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: invalid value for %s", fs.Name(), env)
			}
		}
	})
	return err
}

// serverConfig is what serve and demo share.
type serverConfig struct {
	Addr           string
	Data           string
	MasterKeyFile  string
	TLSCert        string
	TLSKey         string
	LogLevel       string
	LogFormat      string
	ShutdownWait   time.Duration
	MaxBodyBytes   int64
	AuthFailLimit  int
	AuthFailWindow time.Duration
	TrustedProxies string
}

// trustedProxies splits --trusted-proxies.
func (c serverConfig) trustedProxies() []string {
	var out []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *serverConfig) register(fs *flag.FlagSet, defaultData string) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.Data, "data", defaultData, "data directory (bbolt file, generated master key)")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", "", "file holding the base64 master key (default: URE_MASTER_KEY, else <data>/master.key)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves HTTPS")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "console", "console or json")
	fs.DurationVar(&c.ShutdownWait, "shutdown-timeout", 20*time.Second, "how long shutdown waits for requests and syncs")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 10<<20, "largest request body accepted")
	fs.IntVar(&c.AuthFailLimit, "auth-fail-limit", 10, "failed authentications from one address before 429")
	fs.DurationVar(&c.AuthFailWindow, "auth-fail-window", time.Minute, "window for --auth-fail-limit")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated proxy addresses/CIDRs whose X-Forwarded-For names the client (default none)")
}

func (c serverConfig) validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.Data == "" {
		return fmt.Errorf("--data is required")
	}
	return nil
}

// fileSecrets wraps getenv so that every variable can also be given as
// <NAME>_FILE, the path of a file holding the value (Docker and Kubernetes
// secrets): URE_ADMIN_TOKEN_FILE, URE_MASTER_KEY_FILE, ... The variable
// itself wins; a trailing newline in the file is dropped; a file that
// cannot be read yields "" (and the command then says what is missing).
func fileSecrets(getenv func(string) string) func(string) string {
	return func(name string) string {
		if v := getenv(name); v != "" || strings.HasSuffix(name, "_FILE") {
			return v
		}
		path := getenv(name + "_FILE")
		if path == "" {
			return ""
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return ""
		}
		return strings.TrimRight(string(b), "\r\n")
	}
}
