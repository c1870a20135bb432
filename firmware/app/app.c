/*
 * A native Cortex-M3 application for the SBM firmware on QEMU's
 * mps2-an385 (docs/silicon.md): it prints over the CMSDK UART1 (the
 * console; UART0 is the SBM's connection protocol), calls the
 * SBM's boot-info runtime service through the service table and idles.
 * Built by scripts/firmware.sh with arm-none-eabi-gcc; app.ld links it at
 * the primary slot.
 */
#include <stdint.h>
#include "sbm_services.h"

/* UART1, the board's console (UART0 carries the SBM's connection protocol). */
#define UART1_DATA (*(volatile uint32_t *)0x40005000u)
#define UART1_STATE (*(volatile uint32_t *)0x40005004u)
#define UART1_CTRL (*(volatile uint32_t *)0x40005008u)
#define UART1_BAUDDIV (*(volatile uint32_t *)0x40005010u)

extern uint32_t _etext, _sdata, _edata, _sbss, _ebss, _stack_top;

static void put(char c)
{
	while (UART1_STATE & 1u)
		;
	UART1_DATA = (uint8_t)c;
}

static void puts_(const char *s)
{
	while (*s)
		put(*s++);
}

static void hex(const uint8_t *b, int n)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < n; i++) {
		put(digits[b[i] >> 4]);
		put(digits[b[i] & 15]);
	}
}

static void dec(uint32_t v)
{
	char buf[11];
	int i = sizeof buf;
	buf[--i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_(&buf[i]);
}

static const char *version = "native-app";

static void app_main(void)
{
	UART1_BAUDDIV = 16;
	UART1_CTRL = 3; /* TX and RX enabled */
	puts_("app: hello from the native Cortex-M3 application (");
	puts_(version);
	puts_(")\n");
	const struct sbm_services *svc = SBM_SERVICES;
	if (svc->magic != SBM_SERVICES_MAGIC || svc->version != SBM_SERVICES_VERSION || svc->count < 1) {
		puts_("app: no SBM service table\n");
		return;
	}
	struct sbm_boot_info bi;
	int32_t n = svc->boot_info((uint8_t *)&bi, sizeof bi);
	if (n != (int32_t)sizeof bi) {
		puts_("app: boot info failed: ");
		dec((uint32_t)-n);
		puts_("\n");
		return;
	}
	bi.sbm_version[sizeof bi.sbm_version - 1] = 0;
	bi.app_version[sizeof bi.app_version - 1] = 0;
	puts_("app: boot info: device ");
	hex(bi.device_id, sizeof bi.device_id);
	puts_(", SBM ");
	puts_(bi.sbm_version);
	puts_(", application ");
	puts_(bi.app_version);
	puts_(", security counter ");
	dec(bi.security_counter);
	puts_(", lifecycle ");
	dec(bi.lifecycle);
	puts_(", updated this boot ");
	dec(bi.updated_this_boot);
	puts_("\n");
}

void app_reset(void)
{
	uint32_t *src = &_etext, *dst = &_sdata;
	while (dst < &_edata)
		*dst++ = *src++;
	for (dst = &_sbss; dst < &_ebss;)
		*dst++ = 0;
	app_main();
	for (;;)
		__asm__ volatile("wfi");
}

static void fault(void)
{
	puts_("app: fault\n");
	for (;;)
		__asm__ volatile("wfi");
}

/* The vector table at the start of the slot: the SBM checks the initial
   stack pointer and the reset handler before it jumps. */
__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
	&_stack_top, app_reset, fault, fault, fault, fault, fault, 0,
	0, 0, 0, fault, fault, 0, fault, fault,
};
