# SPDX-License-Identifier: MIT
"""mempool.dask at a worker's reference capacity (the pool's max_refs):
a worker that holds its cap of references keeps further results in process
and copies a dependency a same-pool peer hands over by DRef instead of
referencing it (counted in data.counters["ref_fallback"]); results stay
exact. Directly on PoolStores, then on a real LocalCluster whose pool has
the smallest max_refs."""
import pickle
import time

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
from distributed import Client, LocalCluster  # noqa: E402

import mempool  # noqa: E402
import mempool.dask  # noqa: E402
from mempool.dask import store as store_mod  # noqa: E402
from mempool.dask.store import PoolStore, Received, ref_headroom  # noqa: E402

MiB = 1 << 20
MAX_REFS = 1024                  # the smallest table a pool can have


@pytest.fixture
def pool_name(name):
    """conftest's unique pool name, destroyed afterwards."""
    return name


def _objects(name):
    with mempool.Pool(name, create=False) as p:
        return p.stats()["pool"]["objects"]["used"]


def small(i):
    return np.full(4, i, dtype=np.int64)


def test_store_copies_when_full(pool_name, tmp_path):
    """A store at its cap: new values stay in process, and DRefs from a
    peer store (array, table and pickled kinds) arrive as private copies;
    the peer's object keeps exactly the peer's reference."""
    p1 = mempool.Pool(pool_name, arena_bytes=64 * MiB, spill_dir=str(tmp_path),
                      max_refs=MAX_REFS)
    p2 = mempool.Pool(pool_name, create=False)
    full = PoolStore(p1, (pool_name,), min_size=0)
    peer = PoolStore(p2, (pool_name,), min_size=0)
    saved = store_mod._current
    try:
        assert full.ref_cap == MAX_REFS - ref_headroom(MAX_REFS)
        for i in range(full.ref_cap + 10):
            full[f"k{i}"] = small(i)
        assert full.refs_full()
        assert full.counters["stored"] == full.ref_cap
        assert full.counters["kept_private"] == 10
        assert np.array_equal(full[f"k{full.ref_cap + 3}"],
                              small(full.ref_cap + 3))
        # what a peer hands over, in each of the store's kinds
        values = {
            "array": np.arange(5000, dtype=np.float64),
            "table": pd.DataFrame({"x": np.arange(100.0),
                                   "s": [f"v{i}" for i in range(100)]}),
            "pickle": {"a": np.arange(3000), "b": "text"},
        }
        for key, v in values.items():
            peer[key] = v
            assert peer.entry(key).kind == key
        full.install()                     # the receiving process's store
        for key, v in values.items():
            shared = peer.export(key)      # the sender's transfer ref
            got = pickle.loads(pickle.dumps(shared, protocol=5))
            peer.release_export(shared)    # the receiver acknowledged
            assert not isinstance(got, Received)
            ref = peer.entry(key).ref
            assert p2.info(ref)["refs"] == 1      # the peer's only
            full[key] = got                       # kept in process
            back = full[key]
            if key == "array":
                assert np.array_equal(back, v) and back.flags.writeable
            elif key == "table":
                pd.testing.assert_frame_equal(back, v)
            else:
                assert back["b"] == v["b"] and np.array_equal(back["a"], v["a"])
        assert full.counters["ref_fallback"] == 3
        assert full.counters["dref_received"] == 0
        # no pin is left behind by the copies
        assert p1.stats()["pool"]["objects"]["pins"] == 0
        # below the cap again, a transfer is by reference once more
        for i in range(20):
            del full[f"k{i}"]
        assert not full.refs_full()
        shared = peer.export("array")
        got = pickle.loads(pickle.dumps(shared, protocol=5))
        peer.release_export(shared)
        assert isinstance(got, Received)
        assert p2.info(peer.entry("array").ref)["refs"] == 2
        full["array2"] = got
        assert full.counters["dref_received"] == 1
    finally:
        store_mod._current = saved
        full.close()
        peer.close()
        p2.close()
        p1.close()


def counters(dask_worker):
    d = dask_worker.data
    return dict(d.counters, held=sum(1 for k in d if d.entry(k) is not None),
                cap=d.ref_cap)


def make_array(seed, n=200_000):
    return np.random.default_rng(seed).random(n)


def total(x, *smalls):
    return float(x.sum()) + float(sum(int(s[0]) for s in smalls))


def test_cluster_worker_at_max_refs(pool_name, tmp_path):
    kw = mempool.dask.worker_kwargs(pool_name, spill_dir=str(tmp_path),
                                    arena_bytes=128 * MiB, min_size=0,
                                    max_refs=MAX_REFS)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="2GiB",
                      **kw) as cluster, Client(cluster) as c:
        a, b = sorted(c.scheduler_info()["workers"])
        # b holds its cap of references (and some results in process)
        cap = MAX_REFS - ref_headroom(MAX_REFS)
        filler = c.scatter([small(1000 + i) for i in range(cap + 50)],
                           workers=[b], hash=False)
        distributed.wait(filler)
        fb = c.run(counters, workers=[b])[b]
        assert fb["stored"] == cap and fb["kept_private"] == 50, fb
        assert fb["held"] == cap, fb
        # results scattered to b now stay in b's process, exactly
        smalls = c.scatter([small(i) for i in range(10)], workers=[b],
                           hash=False)
        # x is made on a, in the pool; the task on b needs it
        x = c.submit(make_array, 3, workers=[a], pure=False)
        r = c.submit(total, x, *smalls, workers=[b], pure=False,
                     allow_other_workers=False)
        want = float(make_array(3).sum()) + sum(range(10))
        assert r.result(timeout=120) == want
        cnt = c.run(counters)
        assert cnt[a]["dref_sent"] >= 1, cnt
        assert cnt[b]["ref_fallback"] >= 1, cnt
        assert cnt[b]["held"] == cap, cnt
        # a second computation on b with the same input: still exact
        r2 = c.submit(lambda v: float(v.max()), x, workers=[b], pure=False)
        assert r2.result(timeout=120) == float(make_array(3).max())
        # below its cap again, b takes references as before
        del filler[:200]
        end = time.monotonic() + 120
        while (c.run(counters, workers=[b])[b]["held"] > cap - 100
               and time.monotonic() < end):
            time.sleep(0.2)
        y = c.submit(make_array, 4, workers=[a], pure=False)
        r3 = c.submit(lambda v: float(v.sum()), y, workers=[b], pure=False)
        assert r3.result(timeout=120) == float(make_array(4).sum())
        assert c.run(counters)[b]["dref_received"] >= 1
        del x, y, r, r2, r3, smalls, filler
        end = time.monotonic() + 120
        while _objects(pool_name) and time.monotonic() < end:
            time.sleep(0.2)
        assert _objects(pool_name) == 0
