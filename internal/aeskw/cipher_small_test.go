//go:build sbm_smallaes

package aeskw

import (
	"testing"

	"github.com/sbm-project/sbm/internal/smallaes"
)

// TestSmallAESSelected checks that the tag sbm_smallaes (and TinyGo)
// wraps with internal/smallaes, so that the tests run with the tag test
// the firmware's AES.
func TestSmallAESSelected(t *testing.T) {
	b, err := newCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(*smallaes.Block); !ok {
		t.Fatalf("newCipher returned %T, want *smallaes.Block", b)
	}
}
