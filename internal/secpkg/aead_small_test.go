//go:build sbm_smallaes

package secpkg

import (
	"testing"

	"github.com/sbm-project/sbm/internal/smallaes"
)

// TestSmallAESSelected checks that the tag sbm_smallaes (and TinyGo)
// decrypts with internal/smallaes, so that the tests run with the tag
// test the firmware's AES.
func TestSmallAESSelected(t *testing.T) {
	g, err := newGCM(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.(*smallaes.GCM); !ok {
		t.Fatalf("newGCM returned %T, want *smallaes.GCM", g)
	}
}
