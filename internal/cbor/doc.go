// Package cbor is a small, bounded CBOR (RFC 8949) decoder and encoder for
// the device-side parsers of the SBM.
//
// The decoder is a cursor over a byte slice. It accepts only the subset of
// CBOR that the package format (docs/spec/package.md §1) allows: definite
// lengths, preferred (shortest) serialization of integers, lengths and tags,
// and the simple values false, true and null. Floating-point values,
// undefined, other simple values, reserved additional-information values and
// indefinite lengths are rejected. Byte and text strings are returned as
// sub-slices of the input, never copied, and no allocation is proportional to
// a length read from the input. The decoder never panics.
//
// The encoder consists of append-style functions that always produce the
// preferred serialization.
package cbor
