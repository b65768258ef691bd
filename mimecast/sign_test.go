package mimecast_test

import (
	"strings"
	"testing"
	"time"

	"mimecast-ure/mimecast"
)

func TestSignVectors(t *testing.T) {
	const (
		bSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
		bApp    = "7ce8ebb6-dae1-45b2-8b6c-ddd384341eb2"
		bDate   = "Tue, 24 Nov 2015 12:50:11 UTC"
		bID     = "8578fcfc-a305-4d9a-99cb-f4d5ecefe297"
	)
	tests := []struct {
		name                           string
		secret, app, date, reqID, path string
		want                           string
	}{
		{"A third-party vector", "U2VjcmV0S2V5", "ApplicationKey", "Sun, 21 Aug 2022 13:49:40 UTC",
			"3d796b76-4180-40e5-8f7c-6e0fd643b1a9", "/api/test/some-url", "WOywLsnZlsE+D6bp/ug6uch5kxc="},
		{"B get-account", bSecret, bApp, bDate, bID, "/api/account/get-account", "U7X3DNVzJwiKw9F8wS182rWXyr0="},
		{"B find-groups", bSecret, bApp, bDate, bID, "/api/directory/find-groups", "0V8ha8g2uMNXNqTydRhONqLbIB0="},
		{"B safe-score", bSecret, bApp, bDate, bID, "/api/awareness-training/company/get-safe-score-details", "6FYc+dfcd/9FUkdU/FozEInFFfM="},
		{"C url logs", "bXktbWltZWNhc3Qtc2VjcmV0", "test-app-key", "Mon, 06 Jan 2025 09:05:03 UTC",
			"00000000-0000-4000-8000-000000000001", "/api/ttp/url/get-logs", "mQzDM9OAKWOZ002ftHJvx6zLg2A="},
		{"keys trimmed", " U2VjcmV0S2V5\n", "\tApplicationKey ", "Sun, 21 Aug 2022 13:49:40 UTC",
			"3d796b76-4180-40e5-8f7c-6e0fd643b1a9", "/api/test/some-url", "WOywLsnZlsE+D6bp/ug6uch5kxc="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mimecast.Sign(tt.secret, tt.app, tt.date, tt.reqID, tt.path)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSignBadSecretDoesNotQuoteIt(t *testing.T) {
	const secret = "not base64 !!secret-value"
	_, err := mimecast.Sign(secret, "k", "d", "i", "/p")
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	if strings.Contains(err.Error(), "secret-value") {
		t.Errorf("error %q quotes the secret", err)
	}
}

func TestFormatDateAlwaysUTC(t *testing.T) {
	at := time.Date(2015, 11, 24, 13, 50, 11, 0, time.FixedZone("", 3600))
	if got, want := mimecast.FormatDate(at), "Tue, 24 Nov 2015 12:50:11 UTC"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	at = time.Date(2015, 11, 24, 12, 50, 11, 0, time.FixedZone("", 0))
	if got, want := mimecast.FormatDate(at), "Tue, 24 Nov 2015 12:50:11 UTC"; got != want {
		t.Errorf("zero offset zone: got %q, want %q", got, want)
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2024, 11, 17, 17, 2, 30, 0, time.UTC)
	for _, s := range []string{"2024-11-17T17:02:30+0000", "2024-11-17T17:02:30Z", "2024-11-17T18:02:30+01:00", "2024-11-17T19:02:30+0200"} {
		t.Run(s, func(t *testing.T) {
			got, err := mimecast.ParseTime(s)
			if err != nil {
				t.Fatalf("ParseTime: %v", err)
			}
			if !got.Equal(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	if _, err := mimecast.ParseTime("17/11/2024"); err == nil {
		t.Error("got nil error for a bad date")
	}
	if got, want := mimecast.FormatTime(time.Date(2024, 11, 17, 18, 2, 30, 0, time.FixedZone("", 3600))), "2024-11-17T17:02:30+0000"; got != want {
		t.Errorf("FormatTime: got %q, want %q", got, want)
	}
}
