package apphost

import (
	"context"

	"github.com/tetratelabs/wazero"
)

// Cache keeps compiled application modules in memory so that a device
// that boots the same application again (a reset in a test or the demo)
// does not compile it again. Entries are keyed by the SHA-256 of the
// module bytes (wazero's module ID), so a cached entry can only ever stand
// for the very bytes it was compiled from. A Cache is safe for concurrent
// use by several devices; share one per process through Options.Cache.
type Cache struct {
	cc wazero.CompilationCache
}

// NewCache returns an empty in-memory compilation cache.
func NewCache() *Cache { return &Cache{cc: wazero.NewCompilationCache()} }

// Close releases the cache's compiled code. Runs in progress keep working;
// later runs with this cache compile again.
func (c *Cache) Close() error { return c.cc.Close(context.Background()) }
