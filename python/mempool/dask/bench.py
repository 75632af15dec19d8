"""python3 -m mempool.dask.bench: Dask workers passing 64 MiB arrays, with
mempool as their store vs stock Dask, in the same run on the same machine.

The graph: 12 arrays of 64 MiB, array i made on worker i % 3; pairwise sums
s_i = a_i + a_(i+1) on worker (i + 2) % 3 (both inputs come from other
workers); each sum reduced to a float on worker i % 3 (the sum comes from
another worker again). 36 transfers of 64 MiB per run. Reported per mode: the
median wall time of --runs runs (submit to results), and the peak total
memory sampled every 20 ms during the runs: the sum over the worker processes
of their private memory (VmRSS - RssShmem) plus, for mempool, the pool
(both its arena reservation, which tmpfs commits, and its peak used bytes).
"""
from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid

MiB = 1 << 20


def make(i, n):
    import numpy as np

    a = np.arange(n, dtype=np.float64)
    a *= i + 1
    return a


def add(x, y):
    return x + y


def total(x):
    return float(x.sum())


class Sampler(threading.Thread):
    """Peak of sum(private memory of @pids) (+ pool used bytes)."""

    def __init__(self, pids, pool=None):
        super().__init__(daemon=True)
        self.pids, self.pool = pids, pool
        self.peak_private = self.peak_total = self.peak_pool = 0
        self.stop = threading.Event()

    def sample(self):
        from mempool.dask.memory import private_bytes

        priv = 0
        for pid in self.pids:
            try:
                priv += private_bytes(pid)
            except OSError:
                pass
        used = 0
        if self.pool is not None:
            used = self.pool.stats()["pool"]["arena"]["used_bytes"]
        self.peak_private = max(self.peak_private, priv)
        self.peak_pool = max(self.peak_pool, used)
        self.peak_total = max(self.peak_total, priv + used)

    def run(self):
        while not self.stop.is_set():
            self.sample()
            time.sleep(0.02)


def graph(client, workers, n_arrays, n):
    w = lambda i: [workers[i % len(workers)]]   # noqa: E731
    arrays = [client.submit(make, i, n, workers=w(i), pure=False)
              for i in range(n_arrays)]
    sums = [client.submit(add, arrays[i], arrays[(i + 1) % n_arrays],
                          workers=w(i + 2), pure=False)
            for i in range(n_arrays)]
    outs = [client.submit(total, sums[i], workers=w(i), pure=False)
            for i in range(n_arrays)]
    del arrays, sums
    return client.gather(outs)


def expected(n_arrays, n):
    # sum(arange(n)) * ((i+1) + (i+2)), exact in float64 for these sizes
    base = n * (n - 1) / 2
    return [base * ((i + 1) + ((i + 1) % n_arrays + 1)) for i in range(n_arrays)]


def run_mode(mode, args):
    import dask
    from distributed import Client, LocalCluster

    import mempool
    import mempool.dask

    kw = {}
    name = None
    if mode == "mempool":
        name = f"dask-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        kw = mempool.dask.worker_kwargs(name, arena_bytes=args.arena,
                                        spill_dir=args.spill_dir)
    n = args.mib * MiB // 8
    with dask.config.set({"distributed.worker.memory.terminate": False}), \
            LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                         dashboard_address=None, memory_limit="6GiB",
                         **kw) as cluster, Client(cluster) as client:
        workers = sorted(client.scheduler_info()["workers"])
        pids = list(client.run(os.getpid).values())
        pool = mempool.Pool(name, create=False) if name else None
        try:
            graph(client, workers, 3, 1024)            # warm up
            times = []
            sampler = Sampler(pids, pool)
            sampler.start()
            for _ in range(args.runs):
                t0 = time.perf_counter()
                got = graph(client, workers, args.arrays, n)
                times.append(time.perf_counter() - t0)
                assert got == expected(args.arrays, n), "wrong result"
            sampler.stop.set()
            sampler.join()
            arena = pool.stats()["pool"]["arena"]["total_bytes"] if pool else 0
        finally:
            if pool is not None:
                pool.close()
    if name:
        mempool.destroy(name)
    return {"median_s": statistics.median(times), "times": times,
            "peak_private": sampler.peak_private, "peak_pool_used": sampler.peak_pool,
            "arena": arena, "peak_total": sampler.peak_total,
            "peak_total_arena": sampler.peak_private + arena}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--arrays", type=int, default=12)
    ap.add_argument("--mib", type=int, default=64, help="MiB per array")
    ap.add_argument("--arena", default="1280MiB")
    ap.add_argument("--spill-dir", default="/tmp/mempool-dask-bench")
    args = ap.parse_args(argv)
    res = {m: run_mode(m, args) for m in ("stock", "mempool")}
    s, m = res["stock"], res["mempool"]
    print(f"Dask: 3 workers, {args.arrays} arrays of {args.mib} MiB, pairwise "
          f"sums + reductions ({3 * args.arrays} transfers), median of "
          f"{args.runs}")
    print(f"  wall time   stock {s['median_s']:.3f} s   mempool "
          f"{m['median_s']:.3f} s   ({s['median_s'] / m['median_s']:.2f}x faster)")
    print(f"  peak memory stock {s['peak_total'] / MiB:.0f} MiB (workers' "
          f"private)   mempool {m['peak_total'] / MiB:.0f} MiB (private "
          f"{m['peak_private'] / MiB:.0f} + pool used, peak pool used "
          f"{m['peak_pool_used'] / MiB:.0f}); counting the whole arena "
          f"reservation: {m['peak_total_arena'] / MiB:.0f} MiB")
    print("  runs (s): stock " + " ".join(f"{t:.3f}" for t in s["times"])
          + " | mempool " + " ".join(f"{t:.3f}" for t in m["times"]))
    return res


if __name__ == "__main__":
    main()
