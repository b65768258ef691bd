package plugin_test

import (
	"context"
	"testing"

	"mimecast-ure/internal/mimecasttest"
	"mimecast-ure/plugin"
)

// One OAuth token serves every operation on a tenant: the client is shared
// per configuration settings, not built per call (the public plugin's
// weakness #7), and so are its rate-limit waits.
func TestOneClientPerTenant(t *testing.T) {
	e := newCoreEnv(t, mimecasttest.Options{Users: 30, Groups: 2})
	ctx := context.Background()
	c := plugin.Configuration{Name: "oa", Mimecast: plugin.MimecastSettings{BaseURL: e.srv.URL, Auth: plugin.AuthOAuth2,
		ClientID: mimecasttest.DefaultClientID, ClientSecret: mimecasttest.DefaultClientSecret}}
	if _, err := e.svc.CreateConfiguration(ctx, "admin", c); err != nil {
		t.Fatal(err)
	}
	e.emu.ResetStats()
	users := tenantUsers(e, 5)
	for i := 0; i < 3; i++ {
		if _, err := e.svc.FetchScores(ctx, "oa", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ActionFields(ctx, "oa", "add"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ExecuteAction(ctx, "op", "oa", "", users, plugin.Action{Value: "add", Parameters: map[string]string{"group": "create", "name": "Shared"}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.emu.Calls(mimecasttest.PathOAuthToken); got != 1 {
		t.Errorf("OAuth tokens minted = %d, want 1 for every operation on the tenant", got)
	}
	// Validation really presents the credentials: a fresh token each time.
	for i := 0; i < 2; i++ {
		if v, err := e.svc.ValidateConfiguration(ctx, "oa"); err != nil || !v.Success {
			t.Fatalf("validate: %+v %v", v, err)
		}
	}
	if got := e.emu.Calls(mimecasttest.PathOAuthToken); got != 3 {
		t.Errorf("OAuth tokens after two validations = %d, want 3", got)
	}
}
