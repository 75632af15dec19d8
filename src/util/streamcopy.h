/* SPDX-License-Identifier: MIT */
/*
 * streamcopy.h - copying into memory nobody reads soon, with streaming
 * (non-temporal) stores where the CPU has them (streamcopy.c).
 */
#ifndef MEMPOOL_STREAMCOPY_H
#define MEMPOOL_STREAMCOPY_H

#include <stddef.h>

/* Copy @p n bytes from @p src to @p dst (not overlapping) with stores
 * that bypass the cache (x86-64: SSE2 movntdq; elsewhere memcpy), then
 * fence them, so that a store that follows (a publish) is ordered after
 * every byte. For large copies into cold memory only: the bytes are not
 * in the cache afterwards. */
void mempool__copy_stream(void *dst, const void *src, size_t n);

#endif
