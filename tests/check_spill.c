/* SPDX-License-Identifier: MIT */
/*
 * check_spill.c - the spilling layer: per-worker memory and disk limits,
 * LRU/MRU victims, move/copy/save_to_disk, get_file, reads of spilled
 * objects from other processes, corrupt spill files, I/O failpoints, the
 * io_uring -> pwrite fallback, and processes killed while they spill.
 *
 * One binary, one Check suite ("spill"), one TCase per file of
 * tests/spill/ (limits, files, corrupt, failures, processes, kills), which
 * share tests/spill/fixture.h. The scenario ids in test names and comments
 * (B7, E30, G41 ...) are the sections of docs/scenarios.md, as far as the
 * API supports them: B7 (dry run E(n), emulated by one fresh pool per
 * question), B9-B12, D19-D20 (D21/D22, RETAIN and tags, do not exist),
 * E24-E27, E29, E30, E32-E34, F35 (unwritable directory; there is no RETAIN
 * set), F36, F37, G39-G41. Scenarios that talk about "order" check it
 * destructively at the end with assert_order(): lower the owner's limit
 * step by step and watch which object each 0-byte set spills.
 *
 * The main scenarios run under both I/O backends (loop index: io_mode, or
 * policy + 2 * io_mode).
 *
 * The binary doubles as the "unrelated process" of the exec test:
 * check_spill --peer-get <pool> <dref> <len> <sum-hex> <dir> attaches and
 * reads a spilled object (tests/t_peer insists on MEMPOOL_VIEW_MEMORY).
 */
#include "spill/fixture.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* check_spill --peer-get <pool> <dref> <len> <sum-hex> <spill_dir>: an
 * unrelated process reads a spilled object. 0 ok, 1 mismatch, 3 open, 4
 * get. */
static int peer_get(int argc, char **argv)
{
    mempool_options o;
    mempool *p;
    mempool_dref r;
    mempool_view v;
    uint64_t len, sum;
    int rc, bad = 0;

    if (argc != 7 || mempool_dref_parse(argv[3], &r) != 0)
        return 2;
    len = strtoull(argv[4], NULL, 10);
    sum = strtoull(argv[5], NULL, 16);
    mempool_options_init(&o);
    o.flags = 0;
    o.spill_dir = argv[6];
    o.spiller = 0;
    if ((rc = mempool_open(argv[2], &o, &p)) != 0) {
        fprintf(stderr, "peer: open: %s\n", mempool_strerror(rc));
        return 3;
    }
    if ((rc = mempool_get(p, r, &v)) != 0) {
        fprintf(stderr, "peer: get: %s\n", mempool_strerror(rc));
        mempool_close(p);
        return 4;
    }
    if (v.len != len || v.flags != V_DISK || sp_sum(v.data, v.len) != sum) {
        fprintf(stderr, "peer: len %" PRIu64 " flags %u: mismatch\n", v.len,
                v.flags);
        bad = 1;
    }
    if (mempool_release(p, &v) != 0)
        bad = 1;
    mempool_close(p);
    return bad;
}

int main(int argc, char **argv)
{
    Suite *s;

    if (argc > 1 && strcmp(argv[1], "--peer-get") == 0)
        return peer_get(argc, argv);
    s = suite_create("spill");
    spill_limits_tests(s);
    spill_files_tests(s);
    spill_corrupt_tests(s);
    spill_failures_tests(s);
    spill_processes_tests(s);
    spill_kills_tests(s);
    return t_run(s, "spill");
}
