/* SPDX-License-Identifier: MIT */
/*
 * spill/fixture.h - the fixture and helpers shared by the spilling suite
 * (check_spill, one binary built from tests/check_spill.c and the section
 * files of this folder).
 *
 * Every test gets its own spill directory (mkdtemp inside the suite's, so
 * the suite's sweep removes it even when a test dies before its teardown)
 * and its own pool; handles are opened with spiller = 0 unless the test is
 * about the background spiller, so nothing but the test moves objects.
 *
 * The fixture is one struct, `sp`, written only by the checked fixture
 * (sp_setup before the test, sp_teardown after) and by sp_open / sp_close /
 * sp_extra_name. Forked children read it (they inherit the test's copy);
 * anything else a child needs from its test is passed in a struct through
 * t_fork()'s argument, never through a file-scope variable.
 *
 * Data: sp_fill(seed) is a fast 8-byte pattern (objects here go up to
 * 64 MiB); sp_check() verifies it, sp_sum() checksums any bytes.
 */
#ifndef T_SPILL_FIXTURE_H
#define T_SPILL_FIXTURE_H

#include "helpers.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define SMALL_ARENA (4 * MiB)
#define FILE_HDR 4096u       /* a spill file's header, before the payload */

#define ST_MEM  MEMPOOL_STATE_MEMORY
#define ST_DISK MEMPOOL_STATE_DISK
#define ST_BOTH (MEMPOOL_STATE_MEMORY | MEMPOOL_STATE_DISK)
#define ST_GONE 0x100u       /* state_of(): the object does not exist */
#define V_MEM   MEMPOOL_VIEW_MEMORY
#define V_DISK  MEMPOOL_VIEW_DISK

/* ------------------------------------------------------------ fixture */

struct sp_fixture {
    char dir[256];                 /* this test's spill dir */
    char name[T_NAME_LEN];         /* this test's pool */
    char pdir[512];                /* dir/name: the pool's spill files */
    char extra[4][T_NAME_LEN];     /* more pools to destroy */
    int nextra;
    mempool *h[16];                /* handles to close */
    int nh;
};

/** The running test's fixture (see the top of this file). */
extern struct sp_fixture sp;

/** Add a TCase with the spill fixture and @p timeout to @p s. */
TCase *sp_tcase(Suite *s, const char *name, double timeout);

/** Options for this test's pools: private spill dir, no spiller. */
void sp_opts(mempool_options *o, uint64_t arena, uint64_t maxmem,
             unsigned policy, unsigned io);
/** Open pool @p name with @p o (checked; the teardown closes it). */
mempool *sp_open_as(const char *name, const mempool_options *o);
/** sp_open_as(sp.name, o). */
mempool *sp_open(const mempool_options *o);
/** Create this test's pool (W1). */
mempool *sp_create(uint64_t arena, uint64_t maxmem, unsigned policy,
                   unsigned io);
/** Another handle (worker) on this test's pool in this process. */
mempool *sp_attach(uint64_t maxmem, unsigned io);
/** Close a handle opened by sp_open* (checked). */
void sp_close(mempool *p);
/** A fresh pool name the teardown destroys (at most 4 per test). */
const char *sp_extra_name(void);
/** In a forked child: a handle of its own on pool @p name (attach), or
 *  NULL with the reason on stderr. */
mempool *child_open(const char *name, uint64_t maxmem, unsigned io,
                    uint32_t flags, uint32_t spiller);

/* --------------------------------------------------------------- data */

void sp_fill(void *buf, size_t len, uint64_t seed);
bool sp_check(const void *buf, size_t len, uint64_t seed);
uint64_t sp_sum(const void *buf, size_t len);

/* ------------------------------------------------------------ objects */

/** An untyped object of the int64s 1..n (the scenarios' i64{1,..,n}). */
mempool_dref set_i64(mempool *p, int owner, int n, uint32_t flags);
/** Read i64{1..n} back through @p p; the view must have @p vflags. */
void expect_i64(mempool *p, mempool_dref r, int n, uint32_t vflags);
/** Set sp_fill(seed) bytes charged to @p owner (checked). */
mempool_dref set_bytes(mempool *p, int owner, size_t len, uint64_t seed,
                       uint32_t flags);
/** Same, unchecked (any process). @return mempool_put_ex()'s result. */
int try_set_bytes(mempool *p, int owner, size_t len, uint64_t seed,
                  mempool_dref *r);
/** Read sp_fill(seed) bytes back; @p vflags 0 = either kind of view. */
void expect_bytes(mempool *p, mempool_dref r, size_t len, uint64_t seed,
                  uint32_t vflags);
/** Any process: the object's state bits, or ST_GONE. */
unsigned state_of(mempool *p, mempool_dref r);

#define ASSERT_STATE(p, r, want) \
    do { \
        unsigned st_ = state_of((p), (r)); \
        ck_assert_msg(st_ == (unsigned)(want), "state of %s is %#x, want %#x", \
                      #r, st_, (unsigned)(want)); \
    } while (0)

/* -------------------------------------------------------------- files */

/** Does @p n look like a spill file name ("<idx>-<gen>" or ".tmp")? */
bool spill_name(const char *n, bool *tmp);
/** Spill files in @p dir (0 if it does not exist); *ntmp gets the temps. */
int dir_files(const char *dir, int *ntmp);

#define ASSERT_FILES(dir, nfiles, ntmpfiles) \
    do { \
        int t_ = -1, n_ = dir_files((dir), &t_); \
        ck_assert_msg(n_ == (nfiles) && t_ == (ntmpfiles), \
                      "%s holds %d spill files and %d temps, want %d and %d", \
                      (dir), n_, t_, (int)(nfiles), (int)(ntmpfiles)); \
    } while (0)

bool exists(const char *path);
struct stat stat_of(const char *path);
/** The fileref must name "<sp.pdir>/<idx>-<gen>" of @p len payload bytes. */
void check_fileref(const mempool_fileref *f, uint64_t len);
bool same_file(const struct stat *a, const struct stat *b);
/** Read a whole file into a malloc'd buffer. */
unsigned char *slurp(const char *path, size_t *len);
/** Write @p buf as the whole of @p path. */
void spit(const char *path, const void *buf, size_t len);
/** Flip one bit of the byte at @p off. */
void flip_byte(const char *path, off_t off);

/* ----------------------------------------------------------- backends */

/** Can this process set up an io_uring (no seccomp filter, no sysctl)? */
bool uring_usable(void);
/** What stats.io_backend must say after a handle opened with @p io wrote. */
const char *want_backend(unsigned io);

#define ASSERT_BACKEND(p, io) \
    do { \
        struct mempool_stats s_ = t_stats(p); \
        ck_assert_msg(strcmp(s_.io_backend, want_backend(io)) == 0, \
                      "io_backend '%s', want '%s'", s_.io_backend, \
                      want_backend(io)); \
    } while (0)

/* --------------------------------------------------------- order, spiller */

/** Check destructively that the owner's resident objects, most recent
 *  first, are r[0..n) (see fixture.c). */
void assert_order(mempool *setter, mempool *owner, unsigned policy,
                  const mempool_dref *r, const uint64_t *len, int n);
/** Wait up to @p seconds for stats.spiller == @p want. */
bool poll_spiller(mempool *p, int want, double seconds);

/* ----------------------------------------------- the suite's sections */

void spill_limits_tests(Suite *s);     /* limits.c: B7, B10, E24-E34, G40 */
void spill_files_tests(Suite *s);      /* files.c: B9-B12, D19-D20, G39 */
void spill_corrupt_tests(Suite *s);    /* corrupt.c: damaged spill files */
void spill_failures_tests(Suite *s);   /* failures.c: F35-F37, fallback */
void spill_processes_tests(Suite *s);  /* processes.c: G41, other readers */
void spill_kills_tests(Suite *s);      /* kills.c: SIGKILL while spilling */

#endif /* T_SPILL_FIXTURE_H */
