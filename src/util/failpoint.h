/* SPDX-License-Identifier: MIT */
/*
 * failpoint.h - named failpoints at every step of every multi-step
 * operation, for crash and fault tests. Compiled in only when the build
 * defines MEMPOOL_FAILPOINTS (the test builds); otherwise MP_FP() is the
 * constant 0 and costs nothing.
 *
 * The environment variable MEMPOOL_FAILPOINT selects them:
 *
 *   MEMPOOL_FAILPOINT="reserve.done=kill,spill.written=eio@3"
 *
 * Each entry is NAME[=ACTION][@N]: ACTION is kill (SIGKILL to itself, the
 * default), stop (SIGSTOP), delay:MS, park:FD (the hitting thread alone
 * writes one byte to socket FD, then waits until it reads one back: a test
 * holds one thread there, as long as it needs, while the process's other
 * threads run), or eio / enospc (MP_FP returns that error at points that
 * can fail); @N fires on the Nth hit only (default: every hit). The variable is read again after fork, so a test sets it in a
 * child just before the child opens a pool.
 */
#ifndef MEMPOOL_FAILPOINT_H
#define MEMPOOL_FAILPOINT_H

enum mp_fp_id {
#define MP_FAILPOINT(id, name, what) MP_FP_##id,
#include "failpoints.def"
#undef MP_FAILPOINT
    MP_FP_COUNT
};

#ifdef MEMPOOL_FAILPOINTS
int mempool__fp(enum mp_fp_id id);
#define MP_FP(id) mempool__fp(MP_FP_##id)
#else
static inline int mempool__fp_off(void) { return 0; }
#define MP_FP(id) mempool__fp_off()
#endif

#endif /* MEMPOOL_FAILPOINT_H */
