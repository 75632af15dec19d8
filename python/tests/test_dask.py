"""mempool.dask on a real LocalCluster(processes=True): DRef transfers between
workers of one pool, bytes to the client, exact results, spilling by the
pool, lifetime across release, kill -9 and close."""
import os
import signal
import time
import uuid

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

import mempool  # noqa: E402
import mempool.dask  # noqa: E402

MiB = 1 << 20
N64 = 64 * MiB // 8          # float64 elements in 64 MiB


def _figures(name):
    with mempool.Pool(name, create=False) as p:
        return p.stats()


def _objects(name):
    return _figures(name)["pool"]["objects"]["used"]


def _wait_objects(name, want, timeout=120):
    end = time.monotonic() + timeout
    while True:
        n = _objects(name)
        if n == want or time.monotonic() > end:
            return n
        time.sleep(0.1)


@pytest.fixture
def pool_name(tmp_path):
    name = f"dask-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        mempool.destroy(name)
    except mempool.Error:
        pass


@pytest.fixture
def spill_dir(tmp_path):
    d = tmp_path / "spill"
    d.mkdir()
    return str(d)


def _cluster(name, spill_dir, n=3, **opts):
    opts.setdefault("arena_bytes", 512 * MiB)
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                        dashboard_address=None, memory_limit="4GiB",
                        **mempool.dask.worker_kwargs(name, spill_dir=spill_dir,
                                                     **opts))


def make_array(seed, n=N64):
    return np.random.default_rng(seed).random(n)


def consume(x):
    """Runs on the consumer: the input is a read-only view into the pool."""
    from mempool.dask import current_store

    st = current_store().pool.stats()["pool"]["objects"]
    return {"sum": float(x.sum()), "writeable": bool(x.flags.writeable),
            "objects": st["used"], "in_memory_bytes": st["in_memory_bytes"]}


def memory_view(dask_worker):
    from mempool.dask.memory import _status

    s = _status("self")
    return {"shmem": s.get("RssShmem", 0), "private": s["VmRSS"] - s.get("RssShmem", 0),
            "monitor": dask_worker.monitor.get_process_memory(),
            "held": sum(1 for k in dask_worker.data if dask_worker.data.entry(k))}


def scheduler_managed(dask_scheduler):
    return sum(ws.memory.managed_in_memory for ws in dask_scheduler.workers.values())


def _poll(fn, ok, timeout=120):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if ok(v) or time.monotonic() > end:
            return v
        time.sleep(0.2)


def counters(dask_worker):
    return dict(dask_worker.data.counters)


def test_array_one_copy_between_workers(pool_name, spill_dir):
    with _cluster(pool_name, spill_dir) as cluster, Client(cluster) as c:
        w = sorted(c.scheduler_info()["workers"])
        a = c.submit(make_array, 7, workers=[w[0]], pure=False)
        r = c.submit(consume, a, workers=[w[1]], pure=False)
        res = r.result()
        want = make_array(7)
        # one object in the pool, the 64 MiB array, while both hold it
        assert res["objects"] == 1
        assert 64 * MiB <= res["in_memory_bytes"] < 65 * MiB
        assert res["writeable"] is False
        assert res["sum"] == float(want.sum())
        cnt = c.run(counters)
        assert cnt[w[0]]["dref_sent"] == 1 and cnt[w[1]]["dref_received"] == 1
        # the client gets an ordinary ndarray, by bytes
        got = a.result()
        assert type(got) is np.ndarray and np.array_equal(got, want)
        assert sum(v["bytes_sent"] for v in c.run(counters).values()) >= 1
        # Producer and consumer both touched every page (their RSS has them
        # as shared memory); once Dask's memory manager has dropped one of
        # the two replicas, the worker without one is charged nothing for it
        def pair():
            return c.run(memory_view, workers=w[:2])
        ms = _poll(pair, lambda ms: sorted(m["held"] for m in ms.values()) == [0, 1])
        free = [m for m in ms.values() if m["held"] == 0]
        assert len(free) == 1, ms
        assert free[0]["shmem"] >= 60 * MiB
        assert free[0]["monitor"] - free[0]["private"] < MiB
        # Dask's scheduler counts the shared object once (split in shares)
        # three holders (the memory manager stopped, so none is dropped)
        c.run_on_scheduler(lambda dask_scheduler: dask_scheduler.extensions["amm"].stop())
        c.replicate(a, n=3)
        assert len(c.who_has(a)[a.key]) == 3
        assert _objects(pool_name) == 1
        # each holder's share is its own figure; together they are exactly
        # the object's bytes (pool.share() rounds so they add up)
        def share_and_len(dask_worker, key=a.key):
            d = dask_worker.data
            return d.shares()[0], d.pool.info(d.entry(key).ref)["len"]
        figs = _poll(lambda: c.run(share_and_len),
                     lambda f: sum(s for s, _ in f.values()) ==
                     next(iter(f.values()))[1])
        length = next(iter(figs.values()))[1]
        assert 64 * MiB <= length < 64 * MiB + 4096
        assert sum(s for s, _ in figs.values()) == length, figs
        # ... and so does the scheduler's managed memory, after heartbeats
        managed = _poll(lambda: c.run_on_scheduler(scheduler_managed),
                        lambda v: v < 70 * MiB)
        assert 60 * MiB <= managed < 70 * MiB
        del a, r
        assert _wait_objects(pool_name, 0) == 0
    assert _objects(pool_name) == 0


def kinds_of(dask_worker):
    d = dask_worker.data
    return {k: d.entry(k).kind for k in d if d.entry(k) is not None}


def all_kinds(c):
    """{key: the kinds its holders (any worker) stored it as}"""
    out = {}
    for kinds in c.run(kinds_of).values():
        for k, kind in kinds.items():
            out.setdefault(k, set()).add(kind)
    return out


def make_frame(seed, n=1_000_000):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.random(n), "k": rng.integers(0, 50, n),
         "s": pd.Series(rng.integers(0, 9, n)).map("v{}".format).to_numpy()},
        index=pd.RangeIndex(seed * n, seed * n + n, name="i"))


def test_dataframes(pool_name, spill_dir):
    with _cluster(pool_name, spill_dir) as cluster, Client(cluster) as c:
        w = sorted(c.scheduler_info()["workers"])
        f = c.submit(make_frame, 3, workers=[w[0]], pure=False)
        g = c.submit(lambda d: d.groupby("k").x.sum(), f, workers=[w[1]],
                     pure=False)
        want = make_frame(3)
        pd.testing.assert_series_equal(g.result(), want.groupby("k").x.sum())
        got = f.result()
        assert type(got) is pd.DataFrame
        pd.testing.assert_frame_equal(got, want)
        assert c.run(counters)[w[0]]["dref_sent"] == 1
        # this frame went through the TABLE codec; one with another index
        # is pickled (its buffers out of band in the pool), both exact
        assert all_kinds(c)[f.key] == {"table"}
        h = c.submit(lambda d: d.set_index("k"), f, workers=[w[2]], pure=False)
        hk = c.submit(lambda d: len(d), h, workers=[w[1]], pure=False)
        assert hk.result() == len(want)
        assert all_kinds(c)[h.key] == {"pickle"}
        pd.testing.assert_frame_equal(h.result(), want.set_index("k"))
        # and through dask.dataframe, partitions shuffled between workers
        import dask.dataframe as dd

        ddf = dd.from_pandas(want, npartitions=6)
        out = ddf.groupby("s").x.sum().compute()
        pd.testing.assert_series_equal(out.sort_index(),
                                       want.groupby("s").x.sum())
        del f, g, h, hk
        assert _wait_objects(pool_name, 0) == 0


def slow_make(seed):
    time.sleep(0.3)
    return make_array(seed, 4 * MiB // 8)


def slow_add(x, y):
    time.sleep(0.3)
    return x + y


def add_all(*xs):
    out = xs[0].copy()
    for x in xs[1:]:
        out += x
    return out


def test_worker_killed_mid_graph(pool_name, spill_dir):
    with _cluster(pool_name, spill_dir) as cluster, Client(cluster) as c:
        pids = c.run(os.getpid)
        arrays = [c.submit(slow_make, i, pure=False) for i in range(12)]
        sums = [c.submit(slow_add, arrays[i], arrays[(i + 1) % 12], pure=False)
                for i in range(12)]
        total = c.submit(add_all, *sums, pure=False)
        time.sleep(1.5)
        victim = sorted(pids)[1]
        os.kill(pids[victim], signal.SIGKILL)
        res = total.result(timeout=120)
        want = add_all(*[make_array(i, 4 * MiB // 8)
                         + make_array((i + 1) % 12, 4 * MiB // 8)
                         for i in range(12)])
        np.testing.assert_array_equal(res, want)
        del arrays, sums, total, res
        assert _wait_objects(pool_name, 0) == 0
        with mempool.Pool(pool_name, create=False) as p:
            p.reap()
            p.check()                     # fsck: raises on any inconsistency
            st = p.stats()
            assert st["pool"]["objects"]["used"] == 0
            assert st["pool"]["workers"]["dead"] == 0


def test_spilling_by_the_pool(pool_name, spill_dir):
    with _cluster(pool_name, spill_dir, n=2, max_memsize="48MiB") as cluster, \
            Client(cluster) as c:
        w = sorted(c.scheduler_info()["workers"])
        arrays = [c.submit(make_array, i, 2 * MiB, workers=[w[0]], pure=False)
                  for i in range(8)]        # 8 x 16 MiB on a 48 MiB limit
        wait(arrays)
        # Dask's metrics see the pool's spilling (spilled_total: the sizeof
        # of keys on disk, the bytes in files)
        spilled = c.run(lambda dask_worker: tuple(dask_worker.data.spilled_total))
        assert spilled[w[0]][1] >= 5 * 16 * MiB
        assert spilled[w[0]][0] >= 5 * 16 * MiB
        sums = c.gather([c.submit(lambda x: float(x.sum()), a, workers=[w[1]],
                                  pure=False) for a in arrays])
        assert sums == [float(make_array(i, 2 * MiB).sum()) for i in range(8)]
        totals = _figures(pool_name)["totals"]
        assert totals["spills"] >= 5 and totals["restores"] >= 1
        # no zict: no SpillBuffer, no storage directory with files
        kinds = c.run(lambda dask_worker: type(dask_worker.data).__name__)
        assert set(kinds.values()) == {"PoolStore"}
        files = c.run(lambda dask_worker: [
            f for _, _, fs in os.walk(dask_worker.local_directory) for f in fs
            if "storage" in _])
        assert all(not v for v in files.values())
        got = c.gather(arrays)
        for i, x in enumerate(got):
            np.testing.assert_array_equal(x, make_array(i, 2 * MiB))
        del arrays, got
        assert _wait_objects(pool_name, 0) == 0


def test_dask_spill_threshold_evicts(pool_name, spill_dir):
    """Dask's own memory monitor (spill threshold) evicts through the pool."""
    cfg = {"distributed.worker.memory.spill": 0.5,
           "distributed.worker.memory.target": 0.4,
           "distributed.worker.memory.pause": False,
           "distributed.worker.memory.terminate": False}
    with dask.config.set(cfg):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1,
                               processes=True, dashboard_address=None,
                               memory_limit="600MiB",
                               **mempool.dask.worker_kwargs(
                                   pool_name, spill_dir=spill_dir,
                                   arena_bytes=512 * MiB))
    with cluster, Client(cluster) as c:
        arrays = [c.submit(make_array, i, 4 * MiB, pure=False) for i in range(8)]
        wait(arrays)                         # 8 x 32 MiB: 256 MiB of shares
        end = time.monotonic() + 120
        while time.monotonic() < end:
            ev = c.run(lambda dask_worker: dask_worker.data.counters["evicted"])
            if list(ev.values())[0] > 0:
                break
            time.sleep(0.2)
        assert list(ev.values())[0] > 0
        assert _figures(pool_name)["totals"]["spills"] > 0
        # read back (spilled ones from their files) on the worker: exact
        sums = c.gather([c.submit(lambda x: float(x.sum()), a, pure=False)
                         for a in arrays])
        assert sums == [float(make_array(i, 4 * MiB).sum()) for i in range(8)]
        del arrays
        assert _wait_objects(pool_name, 0) == 0


def test_nanny_terminate_ignores_shared_pages(pool_name, spill_dir):
    """The nanny's terminate threshold looks at private memory: a worker
    whose RSS passes it only through pool pages is not restarted (with RSS,
    as stock Dask measures, it would be)."""
    cfg = {"distributed.worker.memory.spill": False,
           "distributed.worker.memory.target": False,
           "distributed.worker.memory.pause": False,
           "distributed.worker.memory.terminate": 0.9}
    with dask.config.set(cfg):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1,
                               processes=True, dashboard_address=None,
                               memory_limit="400MiB",
                               **mempool.dask.worker_kwargs(
                                   pool_name, spill_dir=spill_dir,
                                   arena_bytes=512 * MiB))
    with cluster, Client(cluster) as c:
        (w,) = c.scheduler_info()["workers"]
        pid = c.run(os.getpid)[w]
        arrays = [c.submit(make_array, i, N64, pure=False) for i in range(5)]
        total = c.submit(lambda *xs: sum(float(x.sum()) for x in xs), *arrays,
                         pure=False)
        assert total.result() == sum(float(make_array(i).sum()) for i in range(5))
        m = c.run(memory_view)[w]
        # RSS is past 90% of 400 MiB through the 320 MiB of pool pages ...
        assert m["shmem"] + m["private"] > 0.9 * 400 * MiB, m
        assert m["private"] < 0.9 * 400 * MiB, m
        time.sleep(2)                       # ... for 20 nanny checks
        assert c.run(os.getpid) == {w: pid}
        del arrays, total
        assert _wait_objects(pool_name, 0) == 0


def test_worker_kwargs_refuses_bad_values():
    # A typo in a size made each worker's preload fail; Dask logs "Failed
    # to start preload" and runs the worker with its own SpillBuffer: a
    # cluster silently without the pool. The values are checked up front.
    for bad in ({"max_memsize": "4 gigs"}, {"arena_bytes": "lots"},
                {"min_size": "64 KB-ish"}, {"max_refs": "many"},
                {"max_objects": "1e3x"}):
        with pytest.raises(ValueError):
            mempool.dask.worker_kwargs("p", **bad)
    kw = mempool.dask.worker_kwargs("p", max_memsize="4GiB", max_refs=100)
    assert kw["preload_argv"] == ["--mempool-pool", "p", "--mempool-max-memsize",
                                  "4GiB", "--mempool-max-refs", "100"]
