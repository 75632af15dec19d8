/* SPDX-License-Identifier: MIT */
/*
 * handoff.h - what the handoff files (wait, names, flight, chan) share:
 * the owner locks of the name directory and the channel directory, and
 * the futex words with their sleepers counts (sleepers.h).
 */
#ifndef MEMPOOL_HANDOFF_H
#define MEMPOOL_HANDOFF_H

#include "futex.h"
#include "sleepers.h"
#include "entry.h"
#include "internal.h"

/* Owner lock: a word holding slot + 1 of its holder. A holder that is
 * not alive is replaced (return 1: the caller repairs what it left);
 * a live holder (maybe stopped) is waited for, at most
 * mempool__wait_bound_ns() (then -EAGAIN, not taken). 0 when taken. */
int  mempool__olock(mempool *p, _Atomic uint32_t *l);
void mempool__ounlock(mempool *p, _Atomic uint32_t *l);

/* 1..255 bytes, any byte but NUL; its length or -EINVAL. */
int mempool__hname_len(const char *name);
uint32_t mempool__hname_hash(const char *name, size_t len);

/* Names (names.c): stats and fsck. */
uint64_t mempool__names_count(mempool *p);
int  mempool__names_verify(mempool *p, char *why, size_t whylen);

/* Flight (flight.c): stats. */
uint64_t mempool__flight_count(mempool *p);

/* Channels (chan.c): the reaper's part. */
void mempool__chan_reap(mempool *p, int d);
int  mempool__chan_verify(mempool *p, char *why, size_t whylen);

#endif /* MEMPOOL_HANDOFF_H */
