# SPDX-License-Identifier: MIT
"""mempool.dask at scale and its evict() path, directly: a Dask worker
holding 10,000 pool objects (one reference each: the pool's max_refs),
PoolStore.evict() and .fast on a real pool, and evict() leaving alone
what another worker is charged with."""
import gc
import multiprocessing as mp
import os
import time
import uuid

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
from distributed import Client, LocalCluster  # noqa: E402

import mempool  # noqa: E402
import mempool.dask  # noqa: E402
from mempool.dask.store import PoolStore  # noqa: E402

MiB = 1 << 20


@pytest.fixture
def pool_name():
    name = f"dask-cap-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        mempool.destroy(name)
    except mempool.Error:
        pass


def _objects(name):
    with mempool.Pool(name, create=False) as p:
        return p.stats()["pool"]["objects"]["used"]


def small(i):
    return np.full(8, i, dtype=np.int64)


def held(dask_worker):
    d = dask_worker.data
    return {"entries": sum(1 for k in d if d.entry(k) is not None),
            "kept_private": d.counters["kept_private"],
            "stored": d.counters["stored"]}


def test_worker_holds_10000_objects(pool_name, tmp_path):
    n = 10_000
    kw = mempool.dask.worker_kwargs(pool_name, spill_dir=str(tmp_path),
                                    arena_bytes=512 * MiB, min_size=0)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="4GiB",
                      **kw) as cluster, Client(cluster) as c:
        # scattered straight into the worker's store: 10,000 keys without
        # 10,000 task round trips
        w = next(iter(c.scheduler_info()["workers"]))
        futs = c.scatter([small(i) for i in range(n)], workers=[w],
                         hash=False)
        distributed.wait(futs)
        (h,) = c.run(held).values()
        # every result is a pool object the worker holds a reference to:
        # none fell back to process memory for lack of room in its table
        assert h["kept_private"] == 0, h
        assert h["entries"] == n and h["stored"] == n, h
        assert _objects(pool_name) == n
        for i in (0, 4321, n - 1):
            assert np.array_equal(futs[i].result(), small(i))
        # one task reads every object back from the pool (zero-copy views)
        total = c.submit(lambda *xs: int(sum(int(x[0]) for x in xs)), *futs,
                         workers=[w])
        assert total.result() == n * (n - 1) // 2
        del futs, total
        end = time.monotonic() + 120
        while _objects(pool_name) and time.monotonic() < end:
            time.sleep(0.2)
        assert _objects(pool_name) == 0


@pytest.fixture
def store(pool_name, tmp_path):
    p = mempool.Pool(pool_name, arena_bytes=64 * MiB, spill_dir=str(tmp_path))
    s = PoolStore(p, (pool_name,), min_size=1024)
    yield s
    s.close()
    p.close()


def test_evict_moves_the_least_recently_used_to_disk(store):
    p = store.pool
    vals = {k: np.arange(1000, dtype=np.float64) + i
            for i, k in enumerate("abc")}
    for k, v in vals.items():
        store[k] = v
    store["tiny"] = 5                           # stays in process
    assert sorted(store.fast) == ["a", "b", "c"]
    view = store["a"]                           # a is now the most recent
    assert store.evict() == store.entry("b").nbytes
    info = p.info(store.entry("b").ref)
    assert info["in_memory"] is False and info["on_disk"] is True
    assert sorted(store.fast) == ["a", "c"]
    assert store.counters["evicted"] == 1
    assert store.evict() == store.entry("c").nbytes
    # a is pinned by our view: the move happens at its release
    assert store.evict() == store.entry("a").nbytes
    assert store.fast == ["a"]
    assert np.array_equal(view, vals["a"])
    del view
    gc.collect()
    assert store.fast == []
    assert store.evict() == -1                  # nothing left to evict
    # evicted values read back exactly (mapped from their files)
    for k, v in vals.items():
        assert np.array_equal(store[k], v)
    assert store["tiny"] == 5
    mem, away, disk, _ = store.shares()
    assert mem == 0 and disk == sum(p.info(store.entry(k).ref)["len"]
                                    for k in "abc")
    del store["b"]
    assert "b" not in store
    assert p.stats()["pool"]["objects"]["used"] == 2


def _other_worker(name, text, conn):
    """Another worker of the pool: its own store takes the object."""
    with mempool.Pool(name, create=False) as p:
        st = PoolStore(p, (name,), min_size=1024)
        st["mine"] = np.ones(4096)
        conn.send(str(st.entry("mine").ref))
        conn.recv()
        st.close()


def test_evict_leaves_other_workers_objects(store, pool_name):
    """evict() moves only objects charged to this worker: an object another
    worker stored (and this one holds a reference to) is not its to spill."""
    p = store.pool
    a, b = mp.get_context("fork").Pipe()
    proc = mp.get_context("fork").Process(target=_other_worker,
                                          args=(pool_name, "", b))
    proc.start()
    try:
        assert a.poll(30)
        ref = mempool.DRef.parse(a.recv())
        p.ref(ref)
        from mempool.dask.store import Entry
        store._objs["theirs"] = Entry(ref, "array", 4096 * 8)
        assert store.fast == []
        assert store.evict() == -1
        assert p.info(ref)["in_memory"] is True
        assert np.array_equal(store["theirs"], np.ones(4096))
        store["ours"] = np.zeros(4096)
        assert store.fast == ["ours"]
        assert store.evict() == store.entry("ours").nbytes
        assert p.info(ref)["in_memory"] is True
    finally:
        a.send(None)
        proc.join(30)
    assert proc.exitcode == 0
    # the other worker dropped its reference: ours keeps the object alive
    assert np.array_equal(store["theirs"], np.ones(4096))


def test_shares_of_a_shared_object_add_up_exactly(pool_name, tmp_path):
    """Three workers' stores hold one object (len not divisible by 3): the
    in-memory shares they report add up to exactly its bytes - also while
    one of them holds an extra transfer reference - and the sizeof shares
    to within the rounding of each."""
    from mempool.dask.store import Entry, Received

    pools = [mempool.Pool(pool_name, arena_bytes=64 * MiB,
                          spill_dir=str(tmp_path))]
    pools += [mempool.Pool(pool_name, create=False) for _ in range(2)]
    stores = [PoolStore(p, (pool_name,), min_size=16) for p in pools]
    try:
        a = stores[0]
        a["k"] = np.arange(1001, dtype=np.uint8)
        e = a.entry("k")
        length = pools[0].info(e.ref)["len"]
        assert length % 3 != 0
        for st in stores[1:]:
            st.pool.ref(e.ref)
            st["k"] = Received(Entry(e.ref, e.kind, e.nbytes), st)
        assert pools[0].info(e.ref)["refs"] == 3
        shares = [st.shares()[0] for st in stores]
        assert sum(shares) == length, shares
        assert max(shares) - min(shares) <= 1
        shared = a.export("k")             # a transfer in flight: R = 4
        shares = [st.shares()[0] for st in stores]
        assert sum(shares) == length, shares
        assert shares[0] >= length // 2
        a.release_export(shared)
        assert sum(st.shares()[0] for st in stores) == length
        sizeofs = [st.shares()[3] for st in stores]
        assert e.nbytes - 3 < sum(sizeofs) <= e.nbytes
        del stores[1]["k"]                 # two holders left
        assert sum(st.shares()[0] for st in stores) == length
    finally:
        for st in stores:
            st.close()
        for p in reversed(pools):
            p.close()


def test_frame_the_table_codec_cannot_encode_is_pickled(store):
    # A str column the TABLE codec cannot write as UTF-8 (a lone surrogate:
    # os.listdir() of a file name that is not UTF-8 gives one) made
    # store[key] = df raise UnicodeEncodeError, failing the Dask task that
    # plain Dask runs. It goes through the exact pickle path instead.
    import pandas as pd

    df = pd.DataFrame({"name": ["ok", "caf\udce9", "x"] * 200,
                       "n": np.arange(600)})
    store["f"] = df
    assert store.entry("f").kind == "pickle"
    pd.testing.assert_frame_equal(store["f"], df)
    del store["f"]
    assert store.pool.stats()["pool"]["objects"]["used"] == 0
