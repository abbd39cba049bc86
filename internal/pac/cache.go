package pac

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// CacheOptions configures a Cache. Zero values mean the documented defaults.
type CacheOptions struct {
	// TTL is how long a result is reused; 0 means 30 seconds, as short as
	// keeps a script's time and DNS conditions current while sparing the
	// evaluation on every request to a host.
	TTL time.Duration
	// MaxEntries bounds the entries kept; 0 means 4096. When it is full, an
	// insert drops the expired entries, or else an arbitrary one.
	MaxEntries int
	// Now is the cache's clock; nil means time.Now.
	Now func() time.Time
}

// Cache remembers the results of a Script for a short while, keyed by the
// exact arguments the script gets: for https and wss URLs cut by [CutURL]
// that is the scheme, host and port (Chromium's rule, which is what makes
// the cache effective); for http URLs the whole URL, because a script may
// look at the path. Only successful results are kept; errors are not. Calls
// for the same key while one is evaluating wait for it rather than
// evaluating again. It is safe for concurrent use.
type Cache struct {
	s       *Script
	ttl     time.Duration
	max     int
	now     func() time.Time
	group   singleflight.Group
	mu      sync.RWMutex
	entries map[cacheKey]cacheEntry
}

type cacheKey struct{ url, host string }

type cacheEntry struct {
	result  string
	expires time.Time
}

// NewCache returns a Cache in front of s.
func NewCache(s *Script, o CacheOptions) *Cache {
	c := &Cache{s: s, ttl: o.TTL, max: o.MaxEntries, now: o.Now, entries: map[cacheKey]cacheEntry{}}
	if c.ttl <= 0 {
		c.ttl = 30 * time.Second
	}
	if c.max <= 0 {
		c.max = 4096
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// FindProxy returns the cached result for url and host, or calls
// [Script.FindProxy] and caches its result. An evaluation shared by several
// callers is bounded by the Script's bounds, not by any one caller's
// context; each caller stops waiting when its own ctx ends.
func (c *Cache) FindProxy(ctx context.Context, url, host string) (string, error) {
	k := cacheKey{url, host}
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if ok && c.now().Before(e.expires) {
		return e.result, nil
	}
	ch := c.group.DoChan(url+"\x00"+host, func() (any, error) {
		r, err := c.s.FindProxy(context.WithoutCancel(ctx), url, host)
		if err == nil {
			c.put(k, r)
		}
		return r, err
	})
	select {
	case r := <-ch:
		s, _ := r.Val.(string)
		return s, r.Err
	case <-ctx.Done():
		return "", &Error{Kind: KindCanceled, Func: c.s.entry, Msg: ctx.Err().Error(), Err: ctx.Err()}
	}
}

func (c *Cache) put(k cacheKey, result string) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.max {
		for key, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, key)
			}
		}
		for key := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = cacheEntry{result: result, expires: now.Add(c.ttl)}
}

// Len returns the number of entries held, expired ones included.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
