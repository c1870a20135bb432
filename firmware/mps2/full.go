//go:build tinygo && !sbmfw_ed25519 && !sbmfw_p256 && !sbmfw_board

package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"

	"github.com/sbm-project/sbm/internal/cose"
	"github.com/sbm-project/sbm/internal/secpkg"
	"github.com/sbm-project/sbm/internal/x509lite"
	"github.com/sbm-project/sbm/sbm"
)

const variant = "full"

// run boots the whole SBM (both suites) on the in-RAM hardware: with an
// empty SBM region, then with the SBM descriptor installed.
func run() bool {
	hw := newHardware()
	println("-- sbm.Boot, empty flash")
	sbm.Boot(hw, nil)
	ok := true
	desc := sbm.Descriptor()
	buf := make([]byte, (len(desc)+3)&^3)
	for i := range buf {
		buf[i] = 0xFF
	}
	copy(buf, desc)
	ok = check("program the SBM descriptor", hw.Flash.Program(0, buf) == nil) && ok
	m, err := sbm.Measurement(hw.Flash)
	ok = check("SHA-256 of the SBM region: "+hex.EncodeToString(m[:8]), err == nil) && ok
	_, err = secpkg.VerifyManifest(&secpkg.Anchors{Suite: secpkg.SuiteEd25519}, []byte{0xd2, 0x84})
	ok = check("secpkg.VerifyManifest refuses a truncated manifest", err != nil) && ok
	ok = suiteChecks() && ok
	println("-- sbm.Boot, SBM descriptor installed: recovery until the first session times out")
	// The in-RAM board powers off (powerOff) when the SBM starts its
	// second recovery session: the first one timed out without a
	// programmer. Boot does not return in recovery.
	poweredOK = ok
	sbm.Boot(hw, nil)
	return false
}

// suiteChecks runs both suites' primitives and the device-side verifiers
// the SBM uses on them (COSE_Sign1 and X.509 signatures).
func suiteChecks() bool {
	ok := ed25519Check()
	ok = p256Check() && ok
	var seed [ed25519.SeedSize]byte
	priv := ed25519.NewKeyFromSeed(seed[:])
	protected := []byte{0xa1, 0x01, 0x27} // {alg: EdDSA}
	sig := ed25519.Sign(priv, cose.AppendSigStructure(nil, protected, testBuffer))
	err := cose.VerifySignature(cose.AlgEdDSA, priv.Public().(ed25519.PublicKey), protected, testBuffer, sig)
	ok = check("cose.VerifySignature EdDSA", err == nil) && ok
	key, pub := p256Key()
	h := sha256.Sum256(testBuffer)
	der, err := ecdsa.SignASN1(&counterRNG{}, key, h[:])
	c := &x509lite.Certificate{SignatureAlgorithm: x509lite.ECDSAP256, TBS: testBuffer, Signature: der}
	ok = check("x509lite.CheckSignature ES256", err == nil && c.CheckSignature(x509lite.ECDSAP256, pub) == nil) && ok
	return ok
}
