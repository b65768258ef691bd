package scoring

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestNewTableBands(t *testing.T) {
	tests := []struct {
		band string
		want map[string]int
	}{
		{"", map[string]int{"A": 800, "B": 600, "C": 400, "D": 200, "F": 1}},
		{"min", map[string]int{"A": 800, "B": 600, "C": 400, "D": 200, "F": 1}},
		{" MID ", map[string]int{"A": 900, "B": 700, "C": 500, "D": 300, "F": 100}},
		{"max", map[string]int{"A": 1000, "B": 799, "C": 599, "D": 399, "F": 199}},
	}
	for _, tt := range tests {
		t.Run(tt.band, func(t *testing.T) {
			tab, err := NewTable(tt.band, nil)
			if err != nil {
				t.Fatalf("NewTable(%q): %v", tt.band, err)
			}
			for g, want := range tt.want {
				got, ok := tab.Score(g)
				if !ok || got != want {
					t.Errorf("Score(%q) = %d, %v; want %d, true", g, got, ok, want)
				}
			}
			if got := tab.Mapping(); len(got) != 5 {
				t.Errorf("Mapping() has %d grades, want 5", len(got))
			}
		})
	}
}

func TestNewTableMapping(t *testing.T) {
	tab, err := NewTable("max", map[string]int{"a": 1000, "B": 1000, " c ": 500, "d": 2, "f": 1})
	if err != nil {
		t.Fatalf("NewTable: %v", err)
	}
	for g, want := range map[string]int{"A": 1000, "B": 1000, "C": 500, "D": 2, "F": 1} {
		if got, ok := tab.Score(g); !ok || got != want {
			t.Errorf("Score(%q) = %d, %v; want %d (mapping wins over band)", g, got, ok, want)
		}
	}
}

func TestNewTableErrors(t *testing.T) {
	full := func(edit func(m map[string]int)) map[string]int {
		m := map[string]int{"A": 800, "B": 600, "C": 400, "D": 200, "F": 1}
		edit(m)
		return m
	}
	tests := []struct {
		name      string
		band      string
		mapping   map[string]int
		wantField string
	}{
		{"unknown band", "median", nil, "score.band"},
		{"missing grade", "", full(func(m map[string]int) { delete(m, "C") }), "score.mapping.C"},
		{"unknown key", "", full(func(m map[string]int) { m["E"] = 300 }), "score.mapping.E"},
		{"duplicate key by case", "", full(func(m map[string]int) { m["a"] = 800 }), "score.mapping.a"},
		{"zero", "", full(func(m map[string]int) { m["F"] = 0 }), "score.mapping.F"},
		{"negative", "", full(func(m map[string]int) { m["D"] = -5 }), "score.mapping.D"},
		{"above max", "", full(func(m map[string]int) { m["A"] = 1001 }), "score.mapping.A"},
		{"not ordered", "", full(func(m map[string]int) { m["B"] = 801 }), "score.mapping.B"},
		{"F above D", "", full(func(m map[string]int) { m["F"] = 201 }), "score.mapping.F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTable(tt.band, tt.mapping)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("NewTable error = %v, want *FieldError", err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("Field = %q, want %q (message %q)", fe.Field, tt.wantField, fe.Message)
			}
			if fe.Message == "" || err.Error() == "" {
				t.Errorf("empty message")
			}
		})
	}
}

func TestNewTableBoundaries(t *testing.T) {
	if _, err := NewTable("", map[string]int{"A": 1000, "B": 1, "C": 1, "D": 1, "F": 1}); err != nil {
		t.Errorf("1 and 1000 with equal grades: %v", err)
	}
	if _, err := NewTable("", map[string]int{"A": 1000, "B": 1000, "C": 1000, "D": 1000, "F": 1000}); err != nil {
		t.Errorf("all 1000: %v", err)
	}
}

func TestScore(t *testing.T) {
	tab := MustTable("", nil)
	tests := []struct {
		grade  string
		want   int
		wantOK bool
	}{
		{"A", 800, true}, {"a", 800, true}, {" b\t", 600, true}, {"C", 400, true},
		{"d", 200, true}, {"F", 1, true}, {"", 0, false}, {"E", 0, false},
		{"A+", 0, false}, {"AB", 0, false}, {"unknown", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.grade, func(t *testing.T) {
			got, ok := tab.Score(tt.grade)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Score(%q) = %d, %v; want %d, %v", tt.grade, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	var zero Table
	if _, ok := zero.Score("A"); ok {
		t.Errorf("zero Table scored A")
	}
}

func TestMustTablePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("MustTable with a bad band did not panic")
		}
	}()
	MustTable("nope", nil)
}

func TestCategory(t *testing.T) {
	tests := []struct{ grade, want string }{
		{"A", "Low"}, {"b", "Medium"}, {" C ", "High"}, {"D", "Critical"}, {"f", "Critical"}, {"X", ""}, {"", ""},
	}
	for _, tt := range tests {
		got, ok := Category(tt.grade)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Category(%q) = %q, %v; want %q", tt.grade, got, ok, tt.want)
		}
	}
}

func TestNormalizeGrade(t *testing.T) {
	if g, ok := NormalizeGrade(" c "); g != "C" || !ok {
		t.Errorf("NormalizeGrade(\" c \") = %q, %v", g, ok)
	}
	if _, ok := NormalizeGrade("Z"); ok {
		t.Errorf("NormalizeGrade(Z) ok")
	}
}

func TestDecay(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name    string
		weight  float64
		age, hl time.Duration
		want    float64
	}{
		{"now", 100, 0, 30 * day, 100},
		{"one half-life", 100, 30 * day, 30 * day, 50},
		{"two half-lives", 100, 60 * day, 30 * day, 25},
		{"half a half-life", 100, 15 * day, 30 * day, 100 / math.Sqrt2},
		{"future counts full", 100, -5 * day, 30 * day, 100},
		{"no half-life", 80, 400 * day, 0, 80},
		{"zero weight", 0, day, day, 0},
		{"negative weight", -40, 30 * day, 30 * day, -20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decay(tt.weight, tt.age, tt.hl)
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Decay(%v, %v, %v) = %v, want %v", tt.weight, tt.age, tt.hl, got, tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		base  int
		contr []float64
		want  int
	}{
		{"no events", 800, nil, 800},
		{"one event", 800, []float64{100}, 700},
		{"rounds down", 800, []float64{0.6}, 799},
		{"rounds half away", 800, []float64{0.5}, 800},
		{"sum", 600, []float64{50, 25.4}, 525},
		{"clamped low", 200, []float64{500}, 1},
		{"exactly 1", 101, []float64{100}, 1},
		{"negative raises", 900, []float64{-200}, 1000},
		{"base above max", 1200, nil, 1000},
		{"base below min", 0, nil, 1},
		{"NaN", 500, []float64{math.NaN()}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Apply(tt.base, tt.contr...); got != tt.want {
				t.Errorf("Apply(%d, %v) = %d, want %d", tt.base, tt.contr, got, tt.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	now := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	hl := 30 * 24 * time.Hour
	events := []Event{
		{ID: "old", At: now.Add(-hl), Weight: 100},
		{ID: "new", At: now, Weight: 40},
		{ID: "zero", At: now, Weight: 0},
		{ID: "a-same-time", At: now, Weight: 10},
	}
	x := Explain(600, now, hl, events)
	if x.Base != 600 || x.Score != 500 || x.Total != 100 {
		t.Errorf("Explain = base %d score %d total %v, want 600 500 100", x.Base, x.Score, x.Total)
	}
	wantIDs := []string{"a-same-time", "new", "old"}
	if len(x.Events) != len(wantIDs) {
		t.Fatalf("got %d events, want %d", len(x.Events), len(wantIDs))
	}
	for i, id := range wantIDs {
		if x.Events[i].ID != id {
			t.Errorf("Events[%d].ID = %q, want %q", i, x.Events[i].ID, id)
		}
	}
	if got := x.Events[2].Amount; got != 50 {
		t.Errorf("old event amount = %v, want 50", got)
	}
	if x := Explain(1, now, hl, nil); x.Score != 1 || len(x.Events) != 0 {
		t.Errorf("Explain(1, no events) = %+v", x)
	}
	if got := round2(1.0 / 3); got != 0.33 {
		t.Errorf("round2(1/3) = %v", got)
	}
}
