package errandpg

import (
	"testing"

	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandtest"
)

// TestQueueSuite runs errand's behaviour suite for named kinds with this
// Store, each subtest on a schema of its own: the same suite the core runs
// in memory and on errandtest.MemStore.
func TestQueueSuite(t *testing.T) {
	errandtest.RunQueueSuite(t, func(t *testing.T) errand.Store { return New(migratedPool(t)) })
}
