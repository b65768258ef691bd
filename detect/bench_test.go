package detect_test

import (
	"fmt"
	"testing"

	"mimecast-ure/plugin"
)

// BenchmarkDetect classifies a realistic mix of records (most meet no rule)
// with every rule on, and reports records per second.
func BenchmarkDetect(b *testing.B) {
	d := mustNew(b, nil, true)
	type kr struct {
		kind plugin.LogKind
		rec  plugin.LogRecord
	}
	var mix []kr
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("<m%d@mail.example.com>", i)
		switch i % 10 {
		case 0:
			mix = append(mix, kr{plugin.LogURL, with(urlClick("Phishing & Fraud", "warn"), "messageId", id)})
		case 1, 2, 3:
			mix = append(mix, kr{plugin.LogURL, with(urlClick("Business", "allow"), "messageId", id, "scanResult", "clean")})
		case 4:
			mix = append(mix, kr{plugin.LogAttachment, with(attachmentBase, "messageId", id)})
		case 5, 6:
			mix = append(mix, kr{plugin.LogAttachment, with(attachmentBase, "messageId", id, "result", "safe")})
		case 7:
			mix = append(mix, kr{plugin.LogImpersonation, with(impersonationBase, "messageId", id,
				"identifiers", []any{"targeted_threat_dictionary", "internal_user_name"})})
		case 8:
			mix = append(mix, kr{plugin.LogImpersonation, with(impersonationBase, "messageId", id, "action", "none")})
		case 9:
			mix = append(mix, kr{plugin.LogDLP, with(dlpBase, "messageId", id)})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for i := 0; i < b.N; i++ {
		x := mix[i%len(mix)]
		evs, err := d.Detect(x.kind, x.rec)
		if err != nil {
			b.Fatal(err)
		}
		events += len(evs)
	}
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "records/s")
	}
	b.ReportMetric(float64(events)/float64(b.N), "events/record")
}
