package plugin

import (
	"context"
	"sync"
	"time"

	"mimecast-ure/scoring"
)

// userScores caches, for one configuration, each user's event weights
// decayed to ref. Decay is exponential, so a sum decayed to ref decays to
// any later time as one number: fetch-scores for 10,000 users is 10,000
// map lookups, no store reads. It is rebuilt by one store scan after each
// pull and dropped when the configuration changes.
type userScores struct {
	ref     time.Time
	half    time.Duration
	updated time.Time // the configuration's UpdatedAt it was built for
	sums    map[string]float64
}

// contribution is the user's decayed event total at now.
func (u *userScores) contribution(user string, now time.Time) float64 {
	sum := u.sums[user]
	if sum == 0 {
		return 0
	}
	return scoring.Decay(sum, now.Sub(u.ref), u.half)
}

func (st *eventState) buildLock(name string) *sync.Mutex {
	st.mu.Lock()
	defer st.mu.Unlock()
	l := st.builds[name]
	if l == nil {
		l = &sync.Mutex{}
		st.builds[name] = l
	}
	return l
}

// buildScores returns cfg's score cache, building it by one scan of the
// stored events when force is set or there is no current one.
func (s *Service) buildScores(ctx context.Context, cfg Configuration, det Detector, force bool) (*userScores, error) {
	st := s.events
	lock := st.buildLock(cfg.Name)
	lock.Lock()
	defer lock.Unlock()
	if !force {
		st.mu.Lock()
		cur := st.scores[cfg.Name]
		st.mu.Unlock()
		if cur != nil && cur.updated.Equal(cfg.UpdatedAt) {
			return cur, nil
		}
	}
	half := time.Duration(cfg.Events.HalfLife)
	if half <= 0 {
		half = DefaultHalfLife
	}
	u := &userScores{ref: s.now(), half: half, updated: cfg.UpdatedAt, sums: map[string]float64{}}
	rules := ruleIndex(det.Rules())
	f := EventFilter{Limit: scanPage}
	for {
		evs, next, err := s.store.Events(ctx, cfg.Name, f)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if w := effectiveWeight(rules, e); w != 0 {
				u.sums[e.User] += scoring.Decay(w, u.ref.Sub(e.At), half)
			}
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	st.mu.Lock()
	st.scores[cfg.Name] = u
	st.mu.Unlock()
	return u, nil
}

// applyEventScores lowers each record's Score by its user's decayed events
// when the configuration scores events, keeping the grade-only score in
// GradeScore. Scores stay within 1–1000.
func (s *Service) applyEventScores(ctx context.Context, cfg Configuration, recs []ScoredRecord) ([]ScoredRecord, error) {
	if !eventsEnabled(cfg) || !cfg.Events.Scoring || s.opts.Detector == nil || len(recs) == 0 {
		return recs, nil
	}
	det, err := s.opts.Detector(cfg.Events, controlsEnabled(cfg))
	if err != nil {
		return nil, err
	}
	u, err := s.buildScores(ctx, cfg, det, false)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for i := range recs {
		r := &recs[i]
		r.GradeScore = r.Score
		if c := u.contribution(NormalizeEmail(r.UID), now); c != 0 {
			r.Score = scoring.Apply(r.GradeScore, c)
		}
	}
	return recs, nil
}
