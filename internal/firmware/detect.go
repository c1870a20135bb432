package firmware

import (
	"bytes"
	"encoding/binary"
)

const (
	elfMagic  = "\x7fELF"
	wasmMagic = "\x00asm"
)

// Detect picks the format by content: ELF magic \x7fELF; WebAssembly magic
// \0asm + version 1; Intel HEX = text whose first non-blank line starts
// with ':' and every line parses; otherwise binary.
//
// "Parses" is checked syntactically: every non-blank line is ':' followed
// by at least five pairs of hex digits. Checksums and record semantics are
// left to Load, so that a damaged Intel HEX file is reported as such rather
// than packaged as raw bytes.
func Detect(b []byte) Format {
	switch {
	case bytes.HasPrefix(b, []byte(elfMagic)):
		return FormatELF
	case len(b) >= 8 && bytes.HasPrefix(b, []byte(wasmMagic)) &&
		binary.LittleEndian.Uint32(b[4:8]) == 1:
		return FormatWasm
	case looksLikeIHex(b):
		return FormatIHex
	}
	return FormatBinary
}

// looksLikeIHex reports whether every non-blank line of b is shaped like an
// Intel HEX record, and there is at least one.
func looksLikeIHex(b []byte) bool {
	seen := false
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = trimLine(line)
		if len(line) == 0 {
			continue
		}
		if line[0] != ':' || len(line) < 11 || len(line)%2 == 0 {
			return false
		}
		for _, c := range line[1:] {
			if _, ok := unhex(c); !ok {
				return false
			}
		}
		seen = true
	}
	return seen
}

// trimLine removes the trailing white space (including the CR of a CRLF
// line ending) from a line.
func trimLine(line []byte) []byte {
	return bytes.TrimRight(line, " \t\r")
}

// checkWasmHeader checks the 8-byte header of a WebAssembly binary module.
func checkWasmHeader(b []byte) error {
	if len(b) < 8 || !bytes.HasPrefix(b, []byte(wasmMagic)) {
		return malformed("wasm: missing module header (\\0asm magic and version)")
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != 1 {
		return malformed("wasm: unsupported binary format version %d, want 1", v)
	}
	return nil
}
