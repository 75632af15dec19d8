/* SPDX-License-Identifier: MIT */
/*
 * check_review14.c - session 14's hostile review of the end of a spill
 * write (spill.c finish), which since 5d24f91 may roll a write back
 * without the allocator lock.
 *
 *   rollback_unlink  (failpoints) a write that does not land (an I/O
 *                    error, or the allocator lock not had within the
 *                    bound) dropped F_WRITING first and removed its files
 *                    after. In between another worker may claim the same
 *                    (idx, gen), write the file under the very same names
 *                    and publish F_ONDISK: the late unlink then removed
 *                    that worker's complete file, and the object, evicted
 *                    on the word's say-so, was lost (its get failed). The
 *                    failed writer is held there (spill.ended=park) while
 *                    we write the object; then our move_to_disk and get
 *                    must read it back. Fixed: the files go while
 *                    F_WRITING is still the failed writer's.
 *
 * Needs a failpoint build (-DMEMPOOL_FAILPOINTS=ON). No timing asserted:
 * the park holds the writer as long as the test needs.
 */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef T_FAILPOINTS

enum { OBJ = 20000 };               /* a few spill chunks */

static char fp_rule[96];
static mempool_dref obj;

/* Writes obj's file with an I/O error at its end (spill.written=eio),
 * held right after the write's end (spill.ended=park) by fp_rule. */
static int failing_writer(void *unused)
{
    mempool *q;
    (void)unused;
    setenv("MEMPOOL_FAILPOINT", fp_rule, 1);
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_copy_to_disk(q, obj, NULL), -EIO);
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

START_TEST(test_rollback_unlink)
{
    int fds[2];
    char c;
    pid_t k;

    obj = t_put_fill(t_pool, OBJ, 14);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    snprintf(fp_rule, sizeof fp_rule,
             "spill.written=eio@1,spill.ended=park:%d@1", fds[1]);
    k = t_fork(failing_writer, NULL);
    ck_assert_int_eq(t_recv(fds[0], &c, 1, T_WAIT_S), 0);
    /* The failed write's end is stored: the object is ours to write. */
    ASSERT_RC(mempool_copy_to_disk(t_pool, obj, NULL), 0);
    ck_assert_int_eq(t_send(fds[0], "g", 1), 0);
    t_wait_ok(k);
    /* Evicted on F_ONDISK's say-so: the file is its only copy now. */
    ASSERT_RC(mempool_move_to_disk(t_pool, obj, NULL), 0);
    t_expect_fill(t_pool, obj, OBJ, 14);
    ASSERT_RC(mempool_delete(t_pool, obj), 0);
    t_assert_healthy(t_pool);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

#endif /* T_FAILPOINTS */

int main(void)
{
    const struct t_case cases[] = {
#ifdef T_FAILPOINTS
        { "spill_end", 120, true, { test_rollback_unlink } },
#endif
        { .name = NULL }
    };
    return t_main("review14", cases);
}
