# SPDX-License-Identifier: MIT
"""Processes: fork safety, pickle hops, install() with multiprocessing.Pool,
ProcessPoolExecutor and Queue under fork, forkserver and spawn, and a
worker killed -9 while holding arrays."""
import concurrent.futures as cf
import gc
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

import mempool
import workers
from mempool import _pickle
from conftest import pins

BIG = 1 << 18  # float64 elements: 2 MiB


def sets(pool):
    return pool.stats()["totals"]["sets"]


@pytest.fixture
def installed(pool):
    mempool.install(pool, min_size=65536)
    yield pool
    mempool.uninstall()


def test_fork_reopens(pool):
    ref = pool.put(b"from parent")
    parent_id = pool.worker_id
    a = pool.get(pool.put(np.arange(10)))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # the child's first call opens its own handle (a new worker)
            ok = (pool.worker_id != parent_id and
                  bytes(pool.get(ref)) == b"from parent" and
                  a.sum() == 45 and
                  bytes(pool.get(pool.put(b"child"))) == b"child")
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert pool.worker_id == parent_id
    pool.reap()
    assert pool.stats()["pool"]["workers"]["attached"] == 1
    del a
    assert pins(pool) == 0
    pool.check()


def test_dumps_loads(pool):
    obj = {"a": np.arange(BIG, dtype="f8"), "small": np.arange(10),
           "df": pd.DataFrame({"x": np.arange(BIG // 2)}), "s": "text"}
    before = sets(pool)
    data = mempool.dumps(obj, pool)
    assert len(data) < 4096  # the big buffers are out of band
    assert sets(pool) - before == 2
    out = mempool.loads(data, pool)
    assert np.array_equal(out["a"], obj["a"]) and not out["a"].flags.writeable
    pd.testing.assert_frame_equal(out["df"], obj["df"])
    assert out["small"].flags.writeable  # in-band: an ordinary copy
    with pytest.raises(mempool.NotFound):
        mempool.loads(data, pool)  # a payload is loaded once
    used = pool.stats()["pool"]["arena"]["used_bytes"]
    del out
    gc.collect()
    assert pool.stats()["pool"]["arena"]["used_bytes"] < used
    assert pool.stats()["pool"]["objects"]["used"] == 0


def test_hop_survives_producer_exit(pool, name):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=workers.open_and_put, args=(name, q))
    p.start()
    data = q.get(timeout=60)
    p.join(60)
    assert p.exitcode == 0
    pool.reap()
    out = mempool.loads(data)  # the pool is found by name
    assert out["a"][-1] == (1 << 16) - 1
    del out
    gc.collect()
    assert pool.stats()["pool"]["objects"]["used"] == 0


@pytest.mark.skipif(mempool._mempool.HAVE_HANDOFF,
                    reason="the pool expires hops (test_handoff.py)")
def test_unloaded_payload_expires(pool):
    data = mempool.dumps(np.zeros(BIG), pool)
    assert pool.stats()["pool"]["objects"]["used"] == 1
    assert _pickle.sweep(now=time.monotonic() + _pickle.HOP_TTL + 1) == 1
    assert pool.stats()["pool"]["objects"]["used"] == 0
    with pytest.raises(mempool.NotFound):
        mempool.loads(data, pool)


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_executor_both_ways(installed, method):
    pool = installed
    a = np.random.default_rng(1).random(BIG)
    before = sets(pool)
    ctx = mp.get_context(method)
    with cf.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        kind, writable, total, pid = ex.submit(workers.describe, a).result()
        assert (kind, writable) == ("Buffer", False) and pid != os.getpid()
        assert total == pytest.approx(a.sum())
        # one copy into the pool for the argument, none for the child's read
        assert sets(pool) - before == 1
        b = ex.submit(workers.double, a).result()
    assert np.array_equal(b, a * 2)
    assert isinstance(b.base, mempool.Buffer) and not b.flags.writeable
    assert sets(pool) - before == 3  # argument, argument, result
    del b
    gc.collect()
    pool.reap()
    assert pool.stats()["pool"]["objects"]["used"] == 0
    assert pins(pool) == 0


def test_mp_pool_dataframe(installed):
    df = pd.DataFrame({"x": np.arange(BIG, dtype="f8"), "k": np.arange(BIG)})
    with mp.get_context("fork").Pool(2) as p:
        total, shape, out = p.apply(workers.frame_stats, (df,))
        results = p.map(workers.describe, [np.full(BIG, i, "f8")
                                           for i in range(4)])
    assert total == df["x"].sum() and shape == df.shape
    pd.testing.assert_frame_equal(out, df.assign(y=df["x"] * 3))
    assert [r[:3] for r in results] == [("Buffer", False, float(i * BIG))
                                        for i in range(4)]


def test_queue_spawn(installed):
    ctx = mp.get_context("spawn")
    qin, qout = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=workers.queue_echo, args=(qin, qout))
    p.start()
    a = np.arange(BIG, dtype="i8")
    qin.put(a)
    seen, back = qout.get(timeout=60)
    p.join(60)
    assert seen[:2] == ("Buffer", False)
    assert np.array_equal(back, a + 1) and isinstance(back.base, mempool.Buffer)


def test_killed_worker_leaves_pool_clean(installed):
    pool = installed
    base_used = pool.stats()["pool"]["arena"]["used_bytes"]
    ctx = mp.get_context("fork")
    qin, ready = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=workers.hold_and_wait, args=(qin, ready))
    p.start()
    for i in range(3):
        qin.put(np.full(BIG, i, "f8"))
    seen = ready.get(timeout=60)
    assert [s[0] for s in seen] == ["Buffer"] * 3
    st = pool.stats()["pool"]["objects"]
    # held by the child's pins (and, with handoff, its references)
    assert st["pins"] == 3 and st["used"] == 3
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    assert pool.reap() == 1
    st = pool.stats()["pool"]
    assert st["objects"]["pins"] == 0 and st["objects"]["used"] == 0
    assert st["arena"]["used_bytes"] == base_used
    pool.check()


def test_too_big_for_the_pool_goes_by_value(name, tmp_path):
    # An array or DataFrame the pool cannot take (larger than the arena,
    # or the pool full) made the send fail: ProcessPoolExecutor raised
    # mempool.TooBig, a Queue's feeder thread printed the traceback and
    # dropped the item (the reader waited forever). Plain multiprocessing
    # sends it, so install()'s reducers fall back to ordinary pickling.
    pool = mempool.Pool(name, arena_bytes=16 << 20, spill_dir=str(tmp_path))
    mempool.install(pool)
    try:
        big = np.arange(4 << 20, dtype="f8")                 # 32 MiB
        df = pd.DataFrame({"x": big})
        ctx = mp.get_context("fork")
        with cf.ProcessPoolExecutor(1, mp_context=ctx) as ex:
            kind, _, total, _ = ex.submit(workers.describe, big).result()
            assert kind != "Buffer" and total == big.sum()
            assert ex.submit(workers.frame_stats, df).result()[0] == big.sum()
        q = ctx.Queue()
        q.put(big)
        assert np.array_equal(q.get(timeout=60), big)
    finally:
        mempool.uninstall()
        pool.close()
