/* SPDX-License-Identifier: MIT */
/*
 * streamcopy.c - a large copy into new memory with streaming stores
 * (issue 11 target 3).
 *
 * A large put into pages the kernel has just zeroed (a new pool's, or
 * trimmed ones) copied with memcpy() pays, for every destination line, a
 * read for ownership of a line it is about to overwrite whole, and on
 * this 2-vCPU KVM guest the zeroed lines are still dirty in the zeroing
 * CPU's caches: a 64 MiB copy into freshly collapsed huge pages took
 * ~7.8 ms of CPU with memcpy, ~3.7 ms with streaming stores (raw probe,
 * SCHED_FIFO, medians of 6; memcpy into touched memory ~6.3 ms). glibc
 * switches to streaming stores only above its non_temporal_threshold
 * (240 MiB here: 3/4 of the 320 MiB it believes is the shared cache),
 * and a put copies 2 MiB at a time behind the zeroing (backahead.c), so
 * it never would. SSE2 is part of x86-64, so this needs no run-time
 * dispatch; AVX2 streaming measured no faster. Other CPUs use memcpy().
 *
 * The cost of the choice: the object's bytes are not in the cache after
 * the put, which for copies far larger than the L2 (1 MiB here) they
 * mostly were not anyway; callers use it only for puts of 4 MiB and more.
 * Streaming stores are weakly ordered, so the copy ends with a store
 * fence: the release store that later publishes the object must not pass
 * them (x86's ordinary store ordering does not cover them).
 */
#include <stdint.h>
#include <string.h>

#include "streamcopy.h"

#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>

/* Below this, memcpy(): the fence and the head and tail cost more than
 * a cached copy saves. */
#define STREAM_MIN 4096u
#define LINE 64u

/* Copy whole 64-byte lines to a line-aligned @p d: four 16-byte
 * streaming stores fill a write-combining buffer, one line at a time. */
static void stream_lines(uint8_t *d, const uint8_t *s, size_t lines)
{
    for (size_t i = 0; i < lines; i++, d += LINE, s += LINE) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(s + 32));
        __m128i e = _mm_loadu_si128((const __m128i *)(const void *)(s + 48));
        _mm_stream_si128((__m128i *)(void *)d, a);
        _mm_stream_si128((__m128i *)(void *)(d + 16), b);
        _mm_stream_si128((__m128i *)(void *)(d + 32), c);
        _mm_stream_si128((__m128i *)(void *)(d + 48), e);
    }
}

void mempool__copy_stream(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    size_t head = (size_t)(-(uintptr_t)d & (LINE - 1));
    if (n < STREAM_MIN) {
        memcpy(dst, src, n);
        return;
    }
    memcpy(d, s, head);
    d += head;
    s += head;
    n -= head;
    stream_lines(d, s, n / LINE);
    memcpy(d + (n & ~(size_t)(LINE - 1)), s + (n & ~(size_t)(LINE - 1)),
           n & (LINE - 1));
    /* The streaming stores are weakly ordered: fence them before whatever
     * publishes the bytes. */
    _mm_sfence();
}

#else

void mempool__copy_stream(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}

#endif
