# A stand-in for a microcontroller application, linked by link.ld into
# flash (text, rodata, the load image of data) and RAM (data, bss).
	.section .vectors, "a"
	.long 0x20001000, reset
	.text
reset:
	movl $msg, %esi
	movl $counter, %edi
	jmp reset
	.section .rodata
msg:
	.ascii "sbm firmware test\n"
	.data
counter:
	.long 0xcafef00d
	.long 0x12345678
	.bss
scratch:
	.space 256
