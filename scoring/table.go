// Package scoring turns awareness-training grades and risk events into the
// risk exchange's 1–1000 score (higher is safer). It is pure: no I/O, no
// project imports, so the same rules serve the API, the sync and the tests.
package scoring

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Score bounds of the risk exchange scale.
const (
	MinScore = 1
	MaxScore = 1000
)

// Grades lists the SAFE grades from safest to riskiest.
var Grades = []string{"A", "B", "C", "D", "F"}

// Bands.
const (
	BandMin = "min" // the lowest value of each grade's band (Mimecast's own mapping)
	BandMid = "mid"
	BandMax = "max"
)

var bands = map[string][5]int{
	BandMin: {800, 600, 400, 200, 1},
	BandMid: {900, 700, 500, 300, 100},
	BandMax: {1000, 799, 599, 399, 199},
}

// FieldError says which field of a score table is wrong. Field uses the
// configuration's JSON path (e.g. "score.mapping.B") so the caller can
// turn it into a 400 naming the field.
type FieldError struct {
	Field   string
	Message string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Table maps grades to scores. The zero Table scores nothing; build one
// with NewTable.
type Table struct {
	scores map[string]int
}

// NewTable builds a grade table from a configuration's score section. An
// explicit mapping wins over band; with neither, band "min" applies. A
// mapping must name all five grades A B C D F (keys are case-insensitive),
// each in 1–1000 with A ≥ B ≥ C ≥ D ≥ F. Errors are *FieldError.
func NewTable(band string, mapping map[string]int) (Table, error) {
	if len(mapping) > 0 {
		return fromMapping(mapping)
	}
	b := strings.ToLower(strings.TrimSpace(band))
	if b == "" {
		b = BandMin
	}
	v, ok := bands[b]
	if !ok {
		return Table{}, &FieldError{Field: "score.band", Message: fmt.Sprintf("unknown band %q (want min, mid or max)", band)}
	}
	t := Table{scores: make(map[string]int, len(Grades))}
	for i, g := range Grades {
		t.scores[g] = v[i]
	}
	return t, nil
}

// MustTable is NewTable for known-good arguments (tests, defaults); it
// panics on error.
func MustTable(band string, mapping map[string]int) Table {
	t, err := NewTable(band, mapping)
	if err != nil {
		panic(err)
	}
	return t
}

func fromMapping(mapping map[string]int) (Table, error) {
	t := Table{scores: make(map[string]int, len(Grades))}
	// Walk keys in a stable order so the first error reported is always the same.
	keys := make([]string, 0, len(mapping))
	for k := range mapping {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := normGrade(k)
		field := "score.mapping." + k
		if !isGrade(g) {
			return Table{}, &FieldError{Field: field, Message: fmt.Sprintf("unknown grade %q (want A, B, C, D or F)", k)}
		}
		if _, dup := t.scores[g]; dup {
			return Table{}, &FieldError{Field: field, Message: fmt.Sprintf("grade %s is given twice", g)}
		}
		v := mapping[k]
		if v < MinScore || v > MaxScore {
			return Table{}, &FieldError{Field: field, Message: fmt.Sprintf("must be between %d and %d, got %d", MinScore, MaxScore, v)}
		}
		t.scores[g] = v
	}
	for _, g := range Grades {
		if _, ok := t.scores[g]; !ok {
			return Table{}, &FieldError{Field: "score.mapping." + g, Message: "is required: map all five grades A, B, C, D and F"}
		}
	}
	for i := 1; i < len(Grades); i++ {
		hi, lo := Grades[i-1], Grades[i]
		if t.scores[lo] > t.scores[hi] {
			return Table{}, &FieldError{Field: "score.mapping." + lo,
				Message: fmt.Sprintf("must not exceed grade %s (%d > %d): a better grade never scores lower", hi, t.scores[lo], t.scores[hi])}
		}
	}
	return t, nil
}

// Score returns the grade's score; ok is false for a missing or unknown
// grade (such users get no score rather than a wrong one). Grades are
// matched case-insensitively with surrounding whitespace ignored.
func (t Table) Score(grade string) (int, bool) {
	v, ok := t.scores[normGrade(grade)]
	return v, ok
}

// Mapping returns a copy of the table as grade -> score.
func (t Table) Mapping() map[string]int {
	m := make(map[string]int, len(t.scores))
	for k, v := range t.scores {
		m[k] = v
	}
	return m
}

// Category returns the risk category of a grade as Mimecast's v2 plugin
// names it (A Low, B Medium, C High, D and F Critical); ok is false for an
// unknown grade.
func Category(grade string) (string, bool) {
	switch normGrade(grade) {
	case "A":
		return "Low", true
	case "B":
		return "Medium", true
	case "C":
		return "High", true
	case "D", "F":
		return "Critical", true
	}
	return "", false
}

// NormalizeGrade returns the grade in canonical form ("a " -> "A") and
// whether it is one of A B C D F.
func NormalizeGrade(grade string) (string, bool) {
	g := normGrade(grade)
	return g, isGrade(g)
}

func normGrade(g string) string { return strings.ToUpper(strings.TrimSpace(g)) }

func isGrade(g string) bool {
	for _, x := range Grades {
		if g == x {
			return true
		}
	}
	return false
}

// Decay returns weight scaled by 0.5^(age/halfLife): an event counts full
// weight when it happens and half after one half-life. Events in the future
// (clock skew) count full weight; a halfLife ≤ 0 means no decay.
func Decay(weight float64, age, halfLife time.Duration) float64 {
	if age <= 0 || halfLife <= 0 {
		return weight
	}
	return weight * math.Exp2(-float64(age)/float64(halfLife))
}

// Apply returns base lowered by every contribution (a decayed event
// weight; positive values lower the score, negative ones raise it),
// rounded to the nearest integer and clamped to 1–1000.
func Apply(base int, contributions ...float64) int {
	v := float64(base)
	for _, c := range contributions {
		v -= c
	}
	return Clamp(v)
}

// Clamp rounds v to the nearest integer within 1–1000. NaN is MinScore,
// failing safe towards "risky".
func Clamp(v float64) int {
	switch {
	case math.IsNaN(v) || v < MinScore:
		return MinScore
	case v > MaxScore:
		return MaxScore
	}
	return int(math.Round(v))
}
