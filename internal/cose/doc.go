// Package cose decodes, verifies and creates COSE_Sign1 messages (RFC 9052
// §4.2) in the profile of the SBM package format (docs/spec/package.md §2,
// §3): tag 18, attached payload, empty external_aad, algorithms ES256 (with
// the 64-byte r‖s signature encoding) and EdDSA (Ed25519).
//
// Decoding returns sub-slices of the input and never copies it. The package
// uses only the standard library and internal/cbor, so it can run on the
// device.
package cose
