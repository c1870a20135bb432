#!/bin/sh
# Regenerates the real-toolchain fixtures with host GNU binutils:
#   blink.elf      linked by ld (ELF32 little endian), LMA != VMA for .data
#   blink.hex      objcopy -O ihex of it (04 extended linear address records)
#   blink.bin      objcopy -O binary --gap-fill 0xff: the expected flat image
#   low.elf/.hex   the same linked at 0x0000fff0, where objcopy writes 02
#                  extended segment address records across a 64 KiB boundary
#   low.bin        its expected flat image
set -eu
umask 022
cd "$(dirname "$0")"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
as --32 -o "$t/blink.o" blink.s
ld -n -m elf_i386 -T link.ld -o blink.elf "$t/blink.o"
strip -s blink.elf
objcopy -O ihex blink.elf blink.hex
objcopy -O binary --gap-fill 0xff blink.elf blink.bin
sed -e 's/0x08000000/0x0000fff0/g' -e 's/0x08000040/0x00010030/' link.ld >"$t/low.ld"
ld -n -m elf_i386 -T "$t/low.ld" -o low.elf "$t/blink.o"
strip -s low.elf
objcopy -O ihex low.elf low.hex
objcopy -O binary --gap-fill 0xff low.elf low.bin
chmod 644 blink.elf blink.bin low.elf low.bin
