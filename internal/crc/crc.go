// Package crc computes the two CRC-32 checksums of the device's framing
// bit by bit: CRC-32C (Castagnoli) of the wire frames and CRC-32 (IEEE)
// of the RAM mailbox. The results equal hash/crc32's; the difference is
// size: hash/crc32 builds 1 KiB tables (8 KiB for IEEE's slicing) in the
// firmware's RAM and links their set-up code, where this is a loop of a
// few instructions. At one to two instructions per bit it is far faster
// than the UART it checks.
package crc

// Reversed polynomials (hash/crc32's Castagnoli and IEEE).
const (
	castagnoli = 0x82f63b78
	ieee       = 0xedb88320
)

// UpdateCastagnoli returns the CRC-32C of the bytes before p (crc) and p,
// as hash/crc32.Update with the Castagnoli table.
func UpdateCastagnoli(crc uint32, p []byte) uint32 { return update(crc, castagnoli, p) }

// Castagnoli returns the CRC-32C of p.
func Castagnoli(p []byte) uint32 { return update(0, castagnoli, p) }

// IEEE returns the CRC-32 (IEEE) of p, as hash/crc32.ChecksumIEEE.
func IEEE(p []byte) uint32 { return update(0, ieee, p) }

func update(crc, poly uint32, p []byte) uint32 {
	crc = ^crc
	for _, b := range p {
		crc ^= uint32(b)
		for i := 0; i < 8; i++ {
			crc = crc>>1 ^ poly&-(crc&1)
		}
	}
	return ^crc
}
