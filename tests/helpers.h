/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - shared helpers of the Check suites (prefix t_).
 *
 * Every suite's main() is t_run(): it forces Check's fork mode (each test in
 * its own process, so a crash or a failed ck_assert cannot leak into the next
 * test), gives the binary a private spill directory, and after the run sweeps
 * /dev/shm for anything left behind by a test that failed before its
 * teardown (a failed ck_assert in fork mode exits the test process at once).
 *
 * Pool names are "t-<area>-r<runner pid>-p<test pid>-<counter>-<test fn>", so
 * binaries running in parallel under ctest -j never share a pool and the
 * sweep only removes this binary's leftovers.
 *
 * Anything that may run in a forked child (t_fork callbacks) must not use
 * ck_assert: use T_CHILD_ASSERT, which prints the failed expression and
 * _exit()s with status 1. Helpers that assert are marked "test process only".
 */
#ifndef T_HELPERS_H
#define T_HELPERS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

#include <mempool/mempool.h>

#include "helpers_base.h"

/** Buffer size for a pool name. */
#define T_NAME_LEN (MEMPOOL_NAME_MAX + 1)
/** Default arena of test pools: small, since ctest -j2 runs binaries at once. */
#define T_ARENA_BYTES (32ull << 20)
/** Watchdog (seconds) for waiting on children and pipes. Not an assertion on
 *  time: only turns a hang into a clear failure before Check's timeout. */
#define T_WAIT_S 60.0

/* ---------------------------------------------------------------- names */

extern const char *t_area;   /**< set by t_run() */
extern pid_t t_runner;       /**< pid of the Check runner */

/** Write a fresh unique pool name for @p area into @p buf (T_NAME_LEN). */
char *t_pool_name_fn(char *buf, const char *area, const char *func);
#define t_pool_name(buf, area) t_pool_name_fn((buf), (area), __func__)

/** "/dev/shm/mempool.<name>" */
void t_shm_path(char *buf, size_t len, const char *name);
/** Map pool @p name's whole arena read-only (to look at shared words);
 *  its length in *@p len (test process only; munmap it after). */
const uint8_t *t_map_arena(const char *name, size_t *len);
/** The same, read-write (to damage or forge shared words), also in a
 *  forked child or as another user: NULL if it cannot be mapped. */
uint8_t *t_map_arena_rw(const char *name, size_t *len);

/* ---------------------------------------------------------------- pools */

/** Defaults plus the suite's private spill dir and @p arena_bytes; no
 *  background spiller, 10 ms eviction wait. */
void t_options(mempool_options *o, uint64_t arena_bytes);
/** Open-or-create @p name with t_options(arena_bytes). */
int t_open(const char *name, uint64_t arena_bytes, mempool **out);
/** Attach to an existing @p name (no CREATE). */
int t_attach(const char *name, mempool **out);
/** Checked: open existing @p name with MEMPOOL_OPEN_OBSERVE (no worker
 *  slot, no reaping). */
mempool *t_observe(const char *name);

/** Fixture state: set by t_setup() before each test of a fixture case. */
extern mempool *t_pool;
extern char t_name[T_NAME_LEN];

/** Checked fixture: create t_name with a T_ARENA_BYTES arena into t_pool. */
void t_setup(void);
/** Checked fixture: close t_pool (if still open) and destroy t_name. */
void t_teardown(void);
/** The other user of the security tests. */
#define T_NOBODY 65534
/** In a forked child of a root test: become uid and gid T_NOBODY with no
 *  supplementary groups, for good. 0, or -1 (not permitted, or the ids did
 *  not take). */
int t_become_nobody(void);
/** In a forked child: become the other user (t_become_nobody) and map
 *  pool @p name's whole arena read-write as that user (t_map_arena_rw):
 *  how a hostile second user's child starts. @return the mapping, or NULL
 *  if either step failed. */
uint8_t *t_nobody_arena_rw(const char *name, size_t *len);
/** Checked: re-create the fixture pool t_name with @p mode (umask 0);
 *  false (and a SKIP note naming @p what) when this process is not root
 *  and so cannot act as another user. */
bool t_fixture_mode(const char *what, mode_t mode);
/** t_fixture_mode(@p what, 0666): another uid can open and write it. */
bool t_fixture_shared(const char *what);
/** Child body (t_fork): attach, put a refcounted 8-byte object and send
 *  it on channel @p chan (a const char *) with failpoint
 *  send.committed=kill@1 - killed after its item is in the ring, before
 *  it woke anyone (failpoint builds). Returns 3 if not killed. */
int t_child_send_killed(void *chan);
/** Add a TCase with the checked fixture and @p timeout to @p s. */
TCase *t_tcase(Suite *s, const char *name, double timeout);

/** mempool_stats_get() that must succeed (test process only). */
struct mempool_stats t_stats(mempool *p);
/** Objects charged to worker @p wid (its stats; asserts the call works). */
uint64_t t_worker_objects(mempool *p, int wid);
/** mempool_info_get().pins, or -1 on error (any process). */
long t_pins(mempool *p, mempool_dref r);
/** mempool_info_get().refs, or -1 on error (any process). */
long t_refs(mempool *p, mempool_dref r);
/** Channel @p name's figures (mempool_chan_list()). *@p found (if not NULL)
 *  says whether it is listed; without @p found it must be. */
mempool_chan_info t_chan_info(mempool *p, const char *name, bool *found);
/** Checked: wait (at most T_WAIT_S) until channel @p chan of t_pool counts
 *  @p n receivers asleep, then 20 ms more (the last may still be on its
 *  way into FUTEX_WAIT: a wake-up then still finds it, the word moved). */
void t_await_receivers(const char *chan, uint32_t n);
/** A t_fork() child: attach, receive once from channel @p chan_name (a
 *  char *) with the failpoint recv.taken=stop@1 armed - so it stops with
 *  the item taken and its box not yet freed - then unref the item. */
int t_stopped_receiver(void *chan_name);
/** A t_fork() child: attach to t_name and _exit(0) without closing - a
 *  dead worker for a reap to find. */
int t_dies(void *unused);
/** A t_fork() child: attach, and put a page-run object with the failpoint
 *  alloc.locked=stop@1 armed, so it stops holding the allocator lock;
 *  continued, delete that object and close. */
int t_alloc_holder(void *unused);
/** A t_fork() child (argument: a struct t_closer): attach, put @p n
 *  objects of @p size bytes (charged to it), send their DRefs and then its
 *  worker id over @p rep_fd, wait for a byte on @p go_fd, close; the
 *  close's result over rep_fd. */
struct t_closer {
    int n;
    size_t size;
    int rep_fd, go_fd;
};
int t_closer(void *arg);
/** Checked: the next allocation pays what was owed (entry.c): put and
 *  delete a byte, then @p p's objects and used bytes are back at @p objects0
 *  and @p used0 and it checks clean (test process only). */
void t_assert_settled(mempool *p, uint64_t objects0, uint64_t used0);
/** mempool_check() == 0, else fail the test with its reason. */
void t_assert_healthy(mempool *p);

/** True if [ptr, ptr+len) lies inside one mapping of pool @p name's shm
 *  object in this process (matched by device and inode). */
bool t_in_pool_mapping(const char *name, const void *ptr, size_t len);

/** Can this kernel put a huge page into a tmpfs file (MADV_COLLAPSE)? */
bool t_huge_possible(void);
/** Bytes of pool @p name's shm object mapped by PMDs in this process. */
uint64_t t_pmd_mapped(const char *name);
/** Bytes of memory pool @p name's shm object holds. */
uint64_t t_shm_bytes(const char *name);

/* ----------------------------------------------------------------- data */

uint64_t t_rand(uint64_t *state);                  /**< xorshift64* */
void t_fill(void *buf, size_t len, uint64_t seed);  /**< pattern from seed */
bool t_check_fill(const void *buf, size_t len, uint64_t seed);
uint64_t t_fnv1a(const void *buf, size_t len);
/** Checked (test process only): put @p len bytes of t_fill(@p seed) into
 *  @p p as a plain object. @return its DRef. */
mempool_dref t_put_fill(mempool *p, size_t len, uint64_t seed);
/** Checked (test process only): @p r reads back as exactly @p len bytes of
 *  t_fill(@p seed). */
void t_expect_fill(mempool *p, mempool_dref r, size_t len, uint64_t seed);
uint32_t t_crc32(const void *buf, size_t len);

/* ------------------------------------------------------------ processes */

/** Fork; the child runs fn(arg) and _exit()s with its return value (also
 *  if fn returns normally). @return the child's pid (test process only). */
pid_t t_fork(int (*fn)(void *arg), void *arg);
/** Wait for @p pid at most @p timeout_s. @return its exit status, 128+signal
 *  if it was killed, or -1 if it did not end in time (it is then SIGKILLed
 *  and reaped). */
int t_wait(pid_t pid, double timeout_s);
/** A watchdog on one step of a loop whose work is a count (a crash
 *  matrix's runs): if the step still runs @p seconds later, print @p what
 *  and end the test process (exit 1, which Check reports). Check's timeout
 *  bounds a whole test, so it cannot bound a count of steps on a machine
 *  of unknown load; this bounds each step. t_watchdog(0, NULL) disarms it.
 *  Uses SIGALRM and alarm() (a forked child does not inherit the alarm). */
void t_watchdog(unsigned seconds, const char *what);
/** SIGKILL @p pid and reap it. @return the terminating signal or -1. */
int t_kill(pid_t pid);
/** Checked: wait (at most T_WAIT_S) until @p pid is stopped, e.g. by a
 *  "=stop" failpoint; @p where names the point in the failure message. */
void t_await_stopped(pid_t pid, const char *where);
/** Wait (at most @p timeout_s) until thread @p tid (a process's pid: its
 *  main thread) sleeps in the kernel (state S): a peer that must be asleep
 *  before we act, rather than assumed to be after some time (a loaded
 *  machine under ASan/TSan keeps it off the CPU longer). @return true once
 *  seen asleep, false at the timeout (callers go on: not a failure). */
bool t_await_sleeping(pid_t tid, double timeout_s);
/** Wait, assert exit status 0 (test process only). */
#define t_wait_ok(pid) \
    do { \
        int t_wst_ = t_wait((pid), T_WAIT_S); \
        ck_assert_msg(t_wst_ == 0, "child %d ended with %d (-1: hung, " \
                      ">=128: signal)", (int)(pid), t_wst_); \
    } while (0)

/** In a forked child: on failure print where and _exit(1). */
#define T_CHILD_ASSERT(c) \
    do { \
        if (!(c)) { \
            fprintf(stderr, "child %d: %s:%d: failed: %s\n", (int)getpid(), \
                    __FILE__, __LINE__, #c); \
            fflush(stderr); \
            _exit(1); \
        } \
    } while (0)
/** In a forked child: assert an int equals an expected value. */
#define T_CHILD_EQ(a, b) \
    do { \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
        if (t_a_ != t_b_) { \
            fprintf(stderr, "child %d: %s:%d: %s == %lld, expected %s == " \
                    "%lld\n", (int)getpid(), __FILE__, __LINE__, #a, t_a_, \
                    #b, t_b_); \
            fflush(stderr); \
            _exit(1); \
        } \
    } while (0)

/* --------------------------------------------------------------- storms */

/*
 * A storm: children hammer one pool and note the first thing that went
 * wrong in a struct t_note that lives in shared memory (t_shared_map), so
 * the test process can report it after they end.
 */
struct t_note {
    _Atomic int failed;   /**< 0 = fine, 1 = a child noted a failure */
    char why[320];
};
/** Note "pid: what (rc)" unless a failure is noted already (any process). */
void t_note_bug(struct t_note *n, const char *what, long long rc);
/** Checked: @p len zeroed bytes of anonymous memory shared with children
 *  forked later (test process only; munmap it after). */
void *t_shared_map(size_t len);
/** Checked end of a storm on @p p (test process only): the storm left no
 *  failure note in @p n, nothing to reap, the pool checks clean and holds
 *  no object; then close @p p and destroy t_name. */
void t_storm_end(mempool *p, const struct t_note *n);

/* ---------------------------------------------------------------- pipes */

/** pipe2(O_CLOEXEC) that must succeed (test process only). */
void t_pipe(int fds[2]);
/** Write all @p len bytes. @return 0 or -errno. */
int t_send(int fd, const void *buf, size_t len);
/** Read exactly @p len bytes within @p timeout_s. @return 0, -EPIPE on end of
 *  file, -ETIMEDOUT, or -errno. */
int t_recv(int fd, void *buf, size_t len, double timeout_s);
int t_send_dref(int fd, mempool_dref r);
int t_recv_dref(int fd, mempool_dref *r, double timeout_s);
int t_send_u64(int fd, uint64_t v);
int t_recv_u64(int fd, uint64_t *v, double timeout_s);
/** Block until @p fd has data or end of file (a "go" barrier: the parent
 *  closes the write end). @return 0 or -ETIMEDOUT. */
int t_wait_fd(int fd, double timeout_s);

/* ------------------------------------------------------ remote workers */

/*
 * A remote worker: a forked child with its own handle on a pool that runs
 * commands sent over a pipe, so a test can script what another process holds
 * (pins, references, reservations) and then SIGKILL it at a known point.
 */
struct t_remote {
    pid_t pid;
    int cmd; /* parent writes commands */
    int rep; /* parent reads replies */
};

enum t_remote_op {
    T_R_WID = 1,    /* -> worker id */
    T_R_SET,        /* arg = len: plain object of t_fill(seed = len) */
    T_R_SET_RC,     /* arg = len: refcounted object, one ref held */
    T_R_GET,        /* arg = n: pin r n times and keep the views */
    T_R_RELEASE_ALL,/* release every kept view -> count released */
    T_R_REF,        /* arg = n: ref r n times */
    T_R_UNREF,      /* unref r once */
    T_R_DELETE,     /* delete r */
    T_R_RESERVE,    /* arg = len: reserve, write half of it, keep it */
    T_R_VERIFY,     /* check every kept view still holds its first bytes */
    T_R_QUIT        /* release all, close, _exit(0) */
};

/** Fork a remote worker attached to @p name (test process only). */
void t_remote_start(struct t_remote *w, const char *name);
/** Run @p op on @p r (in: the DRef; out: the new DRef for SET/RESERVE).
 *  @return the call's result (0/count or negative), or INT64_MIN if the
 *  worker did not answer. */
int64_t t_remote_call(struct t_remote *w, int op, mempool_dref *r,
                      uint64_t arg);
/** Ask the worker to quit and wait for it; @return its exit status. */
int t_remote_quit(struct t_remote *w);
/** SIGKILL the worker wherever it is and reap the process. */
void t_remote_kill(struct t_remote *w);

/** Suite main: run @p s in fork mode, then sweep leftovers. @return exit
 *  status (77 if /dev/shm is unusable). */
int t_run(Suite *s, const char *area);

#define T_CASE_TESTS 32          /**< tests one t_case holds at most */
/** One test case of a t_main() suite: its name, its timeout in s, whether
 *  t_setup() / t_teardown() run around each test (t_tcase()'s checked
 *  fixture), and its tests (the rest of the array NULL). */
struct t_case {
    const char *name;
    double timeout;
    bool fixture;
    const TTest *tests[T_CASE_TESTS];
};
/** The usual main(): suite @p area of @p cases, up to one whose name is
 *  NULL, run by t_run(). @return t_run()'s exit status. */
int t_main(const char *area, const struct t_case cases[]);
/** A loop test of a t_main_loops() suite and its count of runs (_i from 0
 *  to @p runs - 1). */
struct t_loop {
    const TTest *test;
    int runs;
};
/** t_main() where the tests named in @p loops (up to one whose test is
 *  NULL) are loop tests. */
int t_main_loops(const char *area, const struct t_case cases[],
                 const struct t_loop loops[]);

#endif /* T_HELPERS_H */
