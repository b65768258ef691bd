package scoring

import (
	"math"
	"sort"
	"time"
)

// Event is the part of a risk event scoring needs.
type Event struct {
	ID     string
	At     time.Time
	Weight float64
}

// Contribution is one event's share of a user's score.
type Contribution struct {
	ID     string
	At     time.Time
	Weight float64
	// Amount is the decayed weight the event takes off the score, rounded
	// to two decimals for display.
	Amount float64
}

// Explanation is a user's score with what moved it.
type Explanation struct {
	Base  int
	Score int
	// Total is the sum of the unrounded contributions.
	Total float64
	// Events are the contributions, newest first (ties by ID).
	Events []Contribution
}

// Explain scores a user: base (the grade's score) lowered by each event's
// weight decayed from its time to now with halfLife, clamped to 1–1000.
// Events with zero weight are left out of the explanation.
func Explain(base int, now time.Time, halfLife time.Duration, events []Event) Explanation {
	x := Explanation{Base: base, Events: make([]Contribution, 0, len(events))}
	for _, e := range events {
		if e.Weight == 0 {
			continue
		}
		c := Decay(e.Weight, now.Sub(e.At), halfLife)
		x.Total += c
		x.Events = append(x.Events, Contribution{ID: e.ID, At: e.At, Weight: e.Weight, Amount: round2(c)})
	}
	sort.SliceStable(x.Events, func(i, j int) bool {
		a, b := x.Events[i], x.Events[j]
		if !a.At.Equal(b.At) {
			return a.At.After(b.At)
		}
		return a.ID < b.ID
	})
	x.Score = Apply(base, x.Total)
	return x
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
