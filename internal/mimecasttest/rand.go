package mimecasttest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
)

// mix64 is the splitmix64 finaliser: a cheap, well-mixed hash of one word.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rng is a tiny deterministic generator; every synthetic value is drawn from
// one seeded from (seed, purpose, index), so any record can be rebuilt alone.
type rng struct{ s uint64 }

func newRNG(parts ...uint64) rng {
	var h uint64 = 0x6a09e667f3bcc908
	for _, p := range parts {
		h = mix64(h ^ p)
	}
	return rng{s: h}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int {
	if n <= 0 {
		return 0
	}
	return int(r.next() % uint64(n))
}

func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

func pick[T any](r *rng, xs []T) T { return xs[r.intn(len(xs))] }

// pickWeighted returns the index chosen by weights (which need not sum to 100).
func pickWeighted(r *rng, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	x := r.intn(total)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// opaqueID makes a Mimecast-looking id ("eNo" + URL-safe base64) from parts.
func opaqueID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	return "eNo" + base64.RawURLEncoding.EncodeToString(append(sum, sum[:12]...))
}

func hexOf(r *rng, nbytes int) string {
	b := make([]byte, nbytes)
	for i := 0; i < nbytes; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.next())
		copy(b[i:], w[:])
	}
	return hex.EncodeToString(b)
}
