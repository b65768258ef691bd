package plugin

import (
	"crypto/sha256"
	"encoding/json"
	"sync"
)

// clientCache keeps one Mimecast client per configuration, so every
// operation on a tenant shares its OAuth token, its rate-limit "not before"
// time and its connections (today's public plugin mints a token per
// operation). An entry is replaced when the configuration's settings
// change and removed when the configuration is updated or deleted, so the
// cache holds at most one client per configuration. Validation never uses
// it: checking credentials must really present them.
type clientCache struct {
	mu     sync.Mutex
	byName map[string]cachedClient
}

type cachedClient struct {
	key [32]byte // SHA-256 of the settings the client was built from
	mc  Mimecast
}

// mimecastClient returns the shared client of a stored configuration,
// building it on first use or when its settings changed.
func (s *Service) mimecastClient(cfg Configuration) (Mimecast, error) {
	b, err := json.Marshal(cfg.Mimecast)
	if err != nil {
		return nil, Errorf(EINTERNAL, "mimecast settings: %v", err)
	}
	key := sha256.Sum256(b)
	c := &s.clients
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byName[cfg.Name]; ok && e.key == key {
		return e.mc, nil
	}
	mc, err := s.opts.Mimecast(cfg.Mimecast)
	if err != nil {
		return nil, err
	}
	if c.byName == nil {
		c.byName = make(map[string]cachedClient)
	}
	c.byName[cfg.Name] = cachedClient{key: key, mc: mc}
	return mc, nil
}

// dropClient forgets a configuration's client (its settings changed or it
// was deleted), so its secrets are not kept in memory for nothing.
func (s *Service) dropClient(name string) {
	s.clients.mu.Lock()
	delete(s.clients.byName, name)
	s.clients.mu.Unlock()
}
