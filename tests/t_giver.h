/* SPDX-License-Identifier: MIT */
/*
 * t_giver.h - a deleter of our objects that stops inside our cache lock
 * (check_giver_stop, check_review8: one copy): it deletes given[0 ..
 * NGIVE) in another process and SIGSTOPs itself at the first recache of
 * its hand-back batch (failpoint handback.given), holding our lock.
 * Include after helpers.h, in failpoint builds.
 */
#ifndef T_GIVER_H
#define T_GIVER_H

enum { NGIVE = 40 };            /* > a stash batch: the batch goes at 32 */

static mempool_dref given[NGIVE];

/* Deletes our objects, stopping in our cache lock at the first recache
 * of its batch. */
static int stopped_deleter(void *unused)
{
    mempool *q;
    (void)unused;
    setenv("MEMPOOL_FAILPOINT", "handback.given=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    for (int i = 0; i < NGIVE; i++)
        T_CHILD_EQ(mempool_delete(q, given[i]), 0);
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

#endif /* T_GIVER_H */
