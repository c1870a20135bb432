package trust

import (
	"crypto"
	"fmt"
	"time"

	"github.com/sbm-project/sbm/internal/hostcose"
)

// Key certificate roles (docs/spec/package.md §4).
const (
	keyCertRoleImageSigning    = 1
	keyCertRoleUpdateAuthority = 2
)

// keyCertPayload is the payload of a key certificate (spec §4).
type keyCertPayload struct {
	Role     uint   `cbor:"1,keyasint"`
	Alg      int64  `cbor:"2,keyasint"`
	Key      []byte `cbor:"3,keyasint"`
	VendorID []byte `cbor:"4,keyasint"`
	Issued   uint64 `cbor:"5,keyasint"`
	Epoch    uint8  `cbor:"6,keyasint,omitempty"`
}

// createKeyCert returns a key certificate, signed by root, binding subject
// to role for vendor at a key epoch (spec §4; 0 is left out).
func createKeyCert(root crypto.Signer, subject crypto.PublicKey, role uint, vendor UUID, now time.Time, epoch uint8) ([]byte, error) {
	raw, err := hostcose.RawPublicKey(subject)
	if err != nil {
		return nil, err
	}
	alg, err := hostcose.Algorithm(subject)
	if err != nil {
		return nil, err
	}
	payload, err := hostcose.Marshal(keyCertPayload{
		Role: role, Alg: int64(alg), Key: raw, VendorID: vendor[:], Issued: uint64(now.Unix()), Epoch: epoch,
	})
	if err != nil {
		return nil, err
	}
	kc, err := hostcose.Sign1(root, hostcose.ContentTypeKeyCert, payload, nil)
	if err != nil {
		return nil, fmt.Errorf("sign key certificate: %w", err)
	}
	return kc, nil
}
