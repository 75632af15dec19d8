/* SPDX-License-Identifier: MIT */
/*
 * helpers_base.h - the test helpers that need nothing but libc and Check:
 * ASSERT_RC, sizes, sanitizer detection, clocks, rm -rf, and main() for a
 * white-box suite that works in a directory of its own.
 *
 * Split from helpers.h because the white-box suites (check_io) link the
 * library's objects instead of libmempool and so cannot link the full
 * helpers library (it links libmempool). helpers.h includes this file, so
 * a suite includes "helpers.h" and gets everything; a white-box suite
 * includes "helpers_base.h" and links mempool_test_base.
 *
 * ASSERT_RC names mempool_strerror(), which the suite itself links (from
 * libmempool or from the library's objects).
 */
#ifndef T_HELPERS_BASE_H
#define T_HELPERS_BASE_H

#include <check.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)

/** Assert a call's integer result (0, a count, or -errno / MEMPOOL_E*)
 *  equals @p want; on failure print both with their error texts. Test
 *  process only (it is a ck_assert); children use T_CHILD_EQ. */
#define ASSERT_RC(expr, want) \
    do { \
        int64_t rc_ = (int64_t)(expr); \
        ck_assert_msg(rc_ == (int64_t)(want), "%s = %" PRId64 " (%s), want " \
                      "%d (%s)", #expr, rc_, mempool_strerror((int)rc_), \
                      (int)(want), mempool_strerror((int)(want))); \
    } while (0)

/* T_TSAN: 1 when built with ThreadSanitizer (gcc defines
 * __SANITIZE_THREAD__, clang answers __has_feature). Suites use it to skip
 * variants TSan cannot judge (accesses through two mappings of one shm
 * object, or from other processes, look like races to it). */
#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_TSAN 1
#endif
#endif
#ifndef T_TSAN
#define T_TSAN 0
#endif

/** CLOCK_MONOTONIC in seconds / nanoseconds (any process). */
double t_now_s(void);
uint64_t t_now_ns(void);

/** Sleep @p ms milliseconds (an interrupted sleep is not resumed). */
void t_sleep_ms(int ms);

/** rm -rf @p path: remove a directory tree (or a file) without following
 *  symlinks; errors are ignored (cleanup only, any process). */
void t_rm_tree(const char *path);

/** main() of a white-box suite that works below a directory of its own:
 *  make @p root (@p len bytes) a fresh /tmp/mempool-check-@p area-XXXXXX,
 *  run @p s (CK_NORMAL), then remove the tree. @return 0, 1 if a test
 *  failed, or 77 (skipped) if the directory could not be made. */
int t_run_in_dir(Suite *s, char *root, size_t len, const char *area);

#endif /* T_HELPERS_BASE_H */
