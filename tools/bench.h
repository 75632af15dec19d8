/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the pipe protocol between mempool-bench and its reader children.
 *
 * The parent sends a job (and, for pool reads, the DRefs to read); the child
 * does one untimed warm-up pass, writes the byte 'R', waits for the byte 'G'
 * so that several children start together, runs the timed pass and sends a
 * job_result followed by its samples. Both ends are the same binary on the
 * same host, so the structs travel as raw bytes.
 */
#ifndef MEMPOOL_BENCH_H
#define MEMPOOL_BENCH_H

#include <stdint.h>
#include <sys/types.h>

#include <mempool.h>

#define MAX_ROUND 32768 /* objects alive per child at once */

enum { JOB_QUIT = 0, JOB_GET = 1 };

/* Parent to child; JOB_GET on pool objects is followed by `count` DRefs. */
struct job {
    uint32_t op;
    uint32_t bare;     /* 1: bare pointer reads instead of mempool_get */
    uint64_t size;
    uint64_t count;    /* objects */
    uint64_t batch;    /* ops per sample; 0: one sample for the whole run */
    uint64_t passes;   /* times over the objects */
    uint64_t bare_off; /* offset of object 0 in the bare mapping */
};

/* Child to parent after a timed run; `nsamples` ns/op doubles follow. */
struct job_result {
    int32_t  err;
    uint32_t pad;
    uint64_t elapsed_ns;
    uint64_t nsamples; /* at most MAX_ROUND */
};

/* One child as seen from either end. */
struct kid {
    pid_t pid;
    int   job_fd; /* jobs: the parent writes, the child reads */
    int   res_fd; /* 'R' and results: the child writes, the parent reads */
};

/**
 * The child's whole life, in a process forked by the parent: attach to
 * @p pool as its own worker, serve jobs from @p k until JOB_QUIT or end of
 * file, and exit (never returns). @p drefs has room for MAX_ROUND DRefs;
 * @p bare is the baseline mapping inherited from the parent.
 */
_Noreturn void bench_child_main(const char *pool, const struct kid *k,
                                mempool_dref *drefs,
                                const unsigned char *bare);

#endif /* MEMPOOL_BENCH_H */
