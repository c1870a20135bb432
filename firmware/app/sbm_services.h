/*
 * The SBM's runtime services for a native application on the mps2-an385
 * SBM firmware (docs/silicon.md, "The native application").
 *
 * Before it jumps into a verified application the SBM writes this table
 * at SBM_SERVICES_ADDR (the top 4 KiB page of SSRAM2/3, outside the
 * application's RAM). The application checks the magic and the version
 * and calls the entries as ordinary C functions (AAPCS), on its own stack.
 */
#ifndef SBM_SERVICES_H
#define SBM_SERVICES_H

#include <stdint.h>

#define SBM_SERVICES_ADDR 0x203FF000u
#define SBM_SERVICES_MAGIC 0x534d4253u /* "SBMS" */
#define SBM_SERVICES_VERSION 1u

/* What sbm_services.boot_info writes (sbm.Services.BootInfo). */
struct sbm_boot_info {
	uint8_t device_id[16];
	uint32_t security_counter;
	uint8_t lifecycle;         /* 0 blank, 1 provisioned, 2 locked */
	uint8_t last_update;       /* 0 none or success, else the wire error code */
	uint8_t updated_this_boot; /* 1 if this boot installed the application */
	uint8_t reserved;
	char sbm_version[16]; /* NUL-terminated */
	char app_version[32]; /* NUL-terminated */
};

struct sbm_services {
	uint32_t magic;
	uint32_t version;
	uint32_t count; /* number of entries that follow */
	/* Writes a struct sbm_boot_info into buf; returns its size (72), -1 if
	   len is too small, -2 if no application was launched. */
	int32_t (*boot_info)(uint8_t *buf, uint32_t len);
};

#define SBM_SERVICES ((const struct sbm_services *)SBM_SERVICES_ADDR)

#endif
