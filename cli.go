package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"mimecast-ure/plugin"
	"mimecast-ure/store"
)

// cliActor is the audit actor of offline commands.
func cliActor() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

// openOffline opens the store of a server that is not running. The master
// key (URE_MASTER_KEY, --master-key-file or <data>/master.key, never
// generated here) keys the audit chain: audit verify and token
// create/revoke (which append audit entries) need it and say so when it is
// missing; token list does not.
func openOffline(data string, readOnly bool, keyFile string, getenv func(string) string) (*store.Store, error) {
	if data == "" {
		return nil, fmt.Errorf("--data is required")
	}
	path := store.FilePath(data)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no store at %s (is --data right?)", path)
	}
	key, err := store.LoadMasterKey(getenv("URE_MASTER_KEY"), keyFile, data)
	if err != nil && !errors.Is(err, store.ErrNoMasterKey) {
		return nil, err
	}
	st, err := store.Open(path, store.Options{ReadOnly: readOnly, MasterKey: key, Logger: zerolog.Nop()})
	if err != nil {
		return nil, fmt.Errorf("open store (is the server still running?): %w", err)
	}
	return st, nil
}

// runToken is `mimecast-ure token create|list|revoke --data DIR`.
func runToken(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return &exitError{code: 2, msg: "usage: mimecast-ure token create|list|revoke --data DIR [flags]"}
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	data := fs.String("data", "./data", "data directory")
	name := fs.String("name", "", "token name (create)")
	owner := fs.String("owner", "", "who owns the token (create)")
	role := fs.String("role", "viewer", "viewer, operator or admin (create)")
	expires := fs.Duration("expires-in", 0, "lifetime, e.g. 720h (create; 0 = no expiry)")
	configs := fs.String("configurations", "", "comma-separated configurations the token is limited to (create)")
	id := fs.String("id", "", "token id (revoke)")
	keyFile := fs.String("master-key-file", "", "file holding the base64 master key (create, revoke; default URE_MASTER_KEY or <data>/master.key)")
	if err := parseFlags(fs, rest, getenv); err != nil {
		return err
	}
	st, err := openOffline(*data, sub == "list", *keyFile, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := plugin.NewService(plugin.ServiceOptions{Store: st, Logger: zerolog.Nop()})
	switch sub {
	case "create":
		req := plugin.TokenRequest{Name: *name, Owner: *owner, Role: plugin.Role(*role), ExpiresIn: plugin.Duration(*expires)}
		for _, c := range strings.Split(*configs, ",") {
			if c = strings.TrimSpace(c); c != "" {
				req.Configurations = append(req.Configurations, c)
			}
		}
		t, value, err := svc.CreateToken(ctx, cliActor(), req)
		if err != nil {
			return fmt.Errorf("create token: %s", plugin.ErrorMessage(err))
		}
		fmt.Fprintf(stdout, "id:    %s\nname:  %s\nrole:  %s\ntoken: %s\n(the token is shown this once)\n", t.ID, t.Name, t.Role, value)
	case "list":
		ts, err := svc.ListTokens(ctx)
		if err != nil {
			return fmt.Errorf("list tokens: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tOWNER\tROLE\tCREATED\tEXPIRES\tLAST USED\tREVOKED\tCONFIGURATIONS")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Owner, t.Role,
				day(t.CreatedAt), day(t.ExpiresAt), day(t.LastUsedAt), day(t.RevokedAt), strings.Join(t.Configurations, ","))
		}
		return tw.Flush()
	case "revoke":
		if *id == "" {
			return fmt.Errorf("--id is required")
		}
		if err := svc.RevokeToken(ctx, cliActor(), *id); err != nil {
			return fmt.Errorf("revoke token: %s", plugin.ErrorMessage(err))
		}
		fmt.Fprintf(stdout, "revoked %s\n", *id)
	default:
		return &exitError{code: 2, msg: "usage: mimecast-ure token create|list|revoke --data DIR [flags]"}
	}
	return nil
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// runAudit is `mimecast-ure audit verify --data DIR`: exit 0 when the chain
// is intact, 1 when an entry was changed or removed.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return &exitError{code: 2, msg: "usage: mimecast-ure audit verify --data DIR"}
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	data := fs.String("data", "./data", "data directory")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	keyFile := fs.String("master-key-file", "", "file holding the base64 master key (default URE_MASTER_KEY or <data>/master.key)")
	if err := parseFlags(fs, args[1:], getenv); err != nil {
		return err
	}
	st, err := openOffline(*data, true, *keyFile, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("verify audit: %w", err)
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "%s (%d entries checked)\n", res.Message, res.Entries)
	}
	if !res.OK {
		return &exitError{code: 1}
	}
	return nil
}

// runRotate is `mimecast-ure rotate-master-key --data DIR`: the current key
// from URE_MASTER_KEY / --master-key-file / <data>/master.key, the new one
// from URE_NEW_MASTER_KEY / --new-master-key-file.
func runRotate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rotate-master-key", flag.ContinueOnError)
	data := fs.String("data", "./data", "data directory")
	oldFile := fs.String("master-key-file", "", "file holding the current base64 master key")
	newFile := fs.String("new-master-key-file", "", "file holding the new base64 master key")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	defaultFile := filepath.Join(*data, store.MasterKeyFile)
	oldB64 := getenv("URE_MASTER_KEY")
	if oldB64 == "" && *oldFile == "" {
		if _, err := os.Stat(defaultFile); err != nil {
			return fmt.Errorf("no current master key: set URE_MASTER_KEY, --master-key-file, or keep %s", defaultFile)
		}
	}
	oldKey, _, err := store.ResolveMasterKey(oldB64, *oldFile, *data)
	if err != nil {
		return fmt.Errorf("current master key: %w", err)
	}
	newB64 := getenv("URE_NEW_MASTER_KEY")
	if newB64 == "" && *newFile == "" {
		return fmt.Errorf("no new master key: set URE_NEW_MASTER_KEY or --new-master-key-file")
	}
	// An empty data dir never generates: the new key must be given.
	newKey, _, err := store.ResolveMasterKey(newB64, *newFile, "")
	if err != nil {
		return fmt.Errorf("new master key: %w", err)
	}
	n, err := store.RotateMasterKey(store.FilePath(*data), oldKey, newKey)
	if err != nil {
		return fmt.Errorf("rotate master key: %w", err)
	}
	fmt.Fprintf(stdout, "re-sealed %d secrets under the new master key\n", n)
	if oldB64 == "" && *oldFile == "" {
		if err := writeKeyFile(defaultFile, newKey); err != nil {
			return fmt.Errorf("secrets are sealed under the new key but %s could not be updated: %w; start the server with the new key", defaultFile, err)
		}
		fmt.Fprintf(stdout, "updated %s\n", defaultFile)
	} else {
		fmt.Fprintln(stdout, "start the server with the new key (URE_MASTER_KEY or --master-key-file); the old key opens nothing now")
	}
	return nil
}

// writeKeyFile replaces path with key (base64, mode 0600) atomically.
func writeKeyFile(path string, key []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
