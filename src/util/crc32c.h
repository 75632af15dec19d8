/* SPDX-License-Identifier: MIT */
/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of spill files (crc32c.c,
 * crc32c_fold.c). A leaf: it needs nothing from the rest of the library.
 */
#ifndef MEMPOOL_CRC32C_H
#define MEMPOOL_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* crc32c (Castagnoli); the fastest way the CPU has (crc32c.c). Calls
 * chain: crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
uint32_t mempool__crc32c(uint32_t crc, const void *buf, size_t len);
/* The table-driven crc32c, whatever the CPU has; same result (tests). */
uint32_t mempool__crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* The ways, slowest first; each CPU has a prefix of them. */
enum { MP_CRC_TABLE = 0, MP_CRC_SSE42 = 1, MP_CRC_FOLD = 2 };
/* Shortest buffer the fold way takes (shorter ones go to sse4.2). */
#define MP_CRC_FOLD_MIN 256u
/* Does this CPU have @p way (MP_CRC_*)? */
bool mempool__crc32c_has(int way);
/* crc32c computed @p way (the table if the CPU lacks it; tests). */
uint32_t mempool__crc32c_by(int way, uint32_t crc, const void *buf,
                            size_t len);
/* "vpclmulqdq", "sse4.2" or "table": the way mempool__crc32c() takes for
 * long buffers. */
const char *mempool__crc32c_way(void);

/* crc32c_fold.c: the folding way on an already inverted @p crc (any
 * length; only if mempool__crc32c_fold_ok()), and whether the CPU and OS
 * allow it. */
uint32_t mempool__crc32c_fold_raw(uint32_t crc, const void *buf, size_t len);
bool mempool__crc32c_fold_ok(void);

#endif /* MEMPOOL_CRC32C_H */
