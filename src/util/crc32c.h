/* SPDX-License-Identifier: MIT */
/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of spill files (crc32c.c).
 * A leaf: it needs nothing from the rest of the library.
 */
#ifndef MEMPOOL_CRC32C_H
#define MEMPOOL_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* crc32c (Castagnoli); hardware-accelerated where the CPU has it. Calls
 * chain: crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
uint32_t mempool__crc32c(uint32_t crc, const void *buf, size_t len);
/* The table-driven crc32c, whatever the CPU has; same result (tests). */
uint32_t mempool__crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* True if mempool__crc32c() uses the SSE4.2 instruction (tests). */
bool mempool__crc32c_hw(void);

#endif /* MEMPOOL_CRC32C_H */
