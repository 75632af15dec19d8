# SPDX-License-Identifier: MIT
"""Spilling and files from Python: spilled objects come back zero-copy
from their mapped file."""
import gc
import os

import numpy as np

import mempool


def test_move_copy_save_get_file(pool, tmp_path):
    a = np.arange(100_000, dtype="f8")
    ref = pool.put(a)
    f = pool.move_to_disk(ref)
    assert isinstance(f, mempool.FileRef) and os.path.exists(f.path)
    info = pool.info(ref)
    assert info["on_disk"] and not info["in_memory"]
    b = pool.get(ref)
    c = pool.get(ref)
    assert np.array_equal(a, b) and b.base.on_disk
    assert np.shares_memory(b, c)  # one mapping, no copy
    assert not b.flags.writeable
    r2 = pool.put(b"bytes on disk")
    f2 = pool.copy_to_disk(r2)
    assert pool.info(r2)["in_memory"] and pool.info(r2)["on_disk"]
    saved = pool.save_to_disk(ref, str(tmp_path / "a.mpf"))
    assert saved.path == str(tmp_path / "a.mpf") and saved.len == f.len
    pool.flush()
    pool.delete(ref)
    del b, c
    gc.collect()
    d = pool.get_file(saved)
    assert np.array_equal(d, a) and d.base.on_disk
    assert bytes(pool.get_file(f2)) == b"bytes on disk"


def test_spill_by_limit(pool):
    pool.max_memsize = 4 << 20
    refs = [pool.put(np.full(1 << 17, i, dtype="f8")) for i in range(8)]
    pool.flush()
    st = pool.stats()["pool"]["objects"]
    assert st["disk_only"] >= 1
    for i, r in enumerate(refs):
        x = pool.get(r)
        assert x[0] == i and x[-1] == i
