package sdk

import (
	"bytes"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the SDK's decoders of service answers
// (boot-info records, certificate chains): they must never panic, and a
// chain they accept must re-encode to the same bytes.
func FuzzParse(f *testing.F) {
	chain, _ := AppendChain(nil, [][]byte{[]byte("leaf"), []byte("ca")})
	f.Add(chain)
	f.Add(make([]byte, 88))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseInfo(b)
		certs, err := ParseChain(b)
		if err != nil {
			return
		}
		again, err := AppendChain(nil, certs)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("chain %x re-encodes to %x (%v)", b, again, err)
		}
	})
}
