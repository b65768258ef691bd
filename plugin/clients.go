package plugin

import (
	"crypto/sha256"
	"encoding/json"
	"sync"
)

// clientCache keeps one Mimecast client per distinct settings, so every
// operation on a tenant shares its OAuth token, its rate-limit "not
// before" time and its connections (today's public plugin mints a token
// per operation). Settings that change give a new key, hence a new client.
type clientCache struct {
	mu      sync.Mutex
	clients map[[32]byte]Mimecast
}

// maxCachedClients bounds the cache; past it the cache starts afresh
// (clients of changed settings are never used again anyway).
const maxCachedClients = 256

// mimecastClient returns the shared client for settings, building it once.
func (s *Service) mimecastClient(settings MimecastSettings) (Mimecast, error) {
	b, err := json.Marshal(settings)
	if err != nil {
		return nil, Errorf(EINTERNAL, "mimecast settings: %v", err)
	}
	key := sha256.Sum256(b)
	c := &s.clients
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.clients[key]; ok {
		return m, nil
	}
	m, err := s.opts.Mimecast(settings)
	if err != nil {
		return nil, err
	}
	if c.clients == nil || len(c.clients) >= maxCachedClients {
		c.clients = make(map[[32]byte]Mimecast)
	}
	c.clients[key] = m
	return m, nil
}
