/* SPDX-License-Identifier: MIT */
/*
 * thread.h - the little per-thread state a get needs: the last pin nonce
 * (pin.c) and the newest recency stamp (recency.h). One thread-local, so a get
 * pays one TLS lookup (with TLS descriptors a call of two instructions),
 * not one per variable.
 */
#ifndef MEMPOOL_THREAD_H
#define MEMPOOL_THREAD_H

#include <stdint.h>

struct mp_thread {
    uint64_t stamp_last;   /* this thread's newest recency stamp */
    uint16_t pin_nonce;    /* last pin nonce handed out (pin.c) */
};

extern _Thread_local struct mp_thread mempool__thr;

#endif /* MEMPOOL_THREAD_H */
