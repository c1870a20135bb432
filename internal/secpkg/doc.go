// Package secpkg is the device-side reader and verifier of the secure image
// package format (docs/spec/package.md): the package container, key
// certificates, the signed manifest, the Update Protection Key (UPK) with
// its ECDH-ES + AES key wrap recipient, and the chunked AES-256-GCM payload
// stream.
//
// Everything here uses only the standard library and the module's
// device-side packages, runs in bounded memory (structures are limited to a
// few kilobytes, the payload is processed one chunk at a time in buffers the
// caller supplies) and reports failures as errors, never panics. Callers
// branch on the sentinel errors with errors.Is; field-level decoding
// failures are *FieldError and chunk failures are *ChunkError.
//
// A typical verification (spec §9):
//
//	c, err := secpkg.ParseContainer(r, size)
//	m, err := secpkg.VerifyManifest(anchors, manifestBytes)
//	err = c.CheckPayload(m)
//	u, err := secpkg.VerifyUPK(anchors, upkBytes)
//	err = u.CheckManifest(m); err = u.CheckDevice(id); err = u.CheckValidity(now)
//	cek, err := u.Unwrap(deviceKey)
//	d, err := secpkg.NewDecrypter(&cek, m)
//	for d.NextChunkLen() > 0 { read chunk; plain, err := d.Open(buf[:0], chunk) }
//	err = d.Finish()
package secpkg
