package plugin

import (
	"context"
	"sync"
)

// hostState is the Service's grade-sync state: the background loop of each
// configuration, the grade index in memory, the pulls in flight, the group
// list cache and the idempotency locks. Every field is guarded by mu.
type hostState struct {
	mu sync.Mutex
	// base is cancelled by Close (or when Start's context ends); every
	// loop and pull runs under it so shutdown never races a sync.
	base    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	closed  bool

	loops  map[string]*syncLoop
	index  map[string]*gradeIndex
	pulls  map[string]*pullCall
	gen    map[string]uint64 // bumped by every change to a configuration
	groups map[string]groupCache
	idemMu map[string]*keyLock
}

func newHostState() *hostState {
	ctx, cancel := context.WithCancel(context.Background())
	return &hostState{
		base:   ctx,
		cancel: cancel,
		loops:  map[string]*syncLoop{},
		index:  map[string]*gradeIndex{},
		pulls:  map[string]*pullCall{},
		gen:    map[string]uint64{},
		groups: map[string]groupCache{},
		idemMu: map[string]*keyLock{},
	}
}

// Start begins the background loops: one grade sync per configuration and
// the event pulls. They run until ctx ends or Close is called.
func (s *Service) Start(ctx context.Context) error {
	h := s.host
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return Errorf(EUNAVAILABLE, "the service is shut down")
	}
	if h.started {
		h.mu.Unlock()
		return nil
	}
	h.started = true
	h.mu.Unlock()
	// A cancelled Start context stops everything, as Close does (but
	// Close is still needed to wait).
	context.AfterFunc(ctx, h.cancel)

	cfgs, err := s.store.Configurations(ctx)
	if err != nil {
		return Errorf(EUNAVAILABLE, "could not read the configurations: %v", ErrorMessage(err))
	}
	for _, c := range cfgs {
		s.startLoop(c.WithDefaults(), false)
	}
	s.startEvents(h.base)
	s.log.Info().Int("configurations", len(cfgs)).Msg("grade sync started")
	return nil
}

// Close stops every loop and pull and waits for them to exit. It is safe
// to call more than once.
func (s *Service) Close() error {
	h := s.host
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
	s.stopEvents()
	return nil
}

// Ready reports whether the background loops run: true once Start has
// returned and until Close.
func (s *Service) Ready() bool {
	h := s.host
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.started && !h.closed && h.base.Err() == nil
}

// goTracked runs fn in a goroutine Close waits for; false when the
// service is closed (fn is not run).
func (h *hostState) goTracked(fn func()) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.goTrackedLocked(fn)
}

func (h *hostState) goTrackedLocked(fn func()) bool {
	if h.closed || h.base.Err() != nil {
		return false
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		fn()
	}()
	return true
}

// keyLock is a mutex with a reference count so the map of locks does not
// grow without bound.
type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lockKey takes the in-process lock of key and returns its unlock.
func (h *hostState) lockKey(key string) func() {
	h.mu.Lock()
	l := h.idemMu[key]
	if l == nil {
		l = &keyLock{}
		h.idemMu[key] = l
	}
	l.refs++
	h.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		h.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(h.idemMu, key)
		}
		h.mu.Unlock()
	}
}

// configuration returns a configuration with secrets in clear and
// defaults applied (for events and controls code). ENOTFOUND if absent.
func (s *Service) configuration(ctx context.Context, name string) (Configuration, error) {
	c, err := s.store.Configuration(ctx, name)
	if err != nil {
		return Configuration{}, err
	}
	return c.WithDefaults(), nil
}
