# SPDX-License-Identifier: MIT
"""python3 -m mempool.bench [--quick]: the Python module's figures, each
beside a baseline measured in the same run (medians of N runs).

  roundtrip  a 64 MiB float64 array to a ProcessPoolExecutor worker and
             back (the worker returns what it got): mempool.install()
             vs default pickling, and vs multiprocessing.shared_memory with
             a manual copy each way
  get        pool.get() of a 64-byte object vs memoryview() of a bytes
  put        pool.put() of a 64 MiB array vs arr.copy()
"""
import argparse
import concurrent.futures as cf
import gc
import multiprocessing as mp
import os
import statistics
import time
from multiprocessing import resource_tracker, shared_memory

import numpy as np

import mempool

MIB = 1 << 20


def _identity(a):
    return a


def _shm_echo(name, shape, dtype):
    """The shared_memory baseline's worker: attach, view, and send the
    array back the same way (a new segment, one copy)."""
    seg = shared_memory.SharedMemory(name)
    a = np.ndarray(shape, dtype, buffer=seg.buf)
    out = shared_memory.SharedMemory(create=True, size=a.nbytes)
    # The parent unlinks both; keep the (shared) resource tracker from
    # counting them as leaked.
    resource_tracker.unregister(seg._name, "shared_memory")
    resource_tracker.unregister(out._name, "shared_memory")
    np.copyto(np.ndarray(shape, dtype, buffer=out.buf), a)
    del a
    seg.close()
    name_out = out.name
    out.close()
    return name_out


def _median_ms(fn, n):
    times = []
    for _ in range(n):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def roundtrip(pool, nbytes, n):
    a = np.random.default_rng(0).random(nbytes // 8)
    ctx = mp.get_context("fork")
    res = {}
    with cf.ProcessPoolExecutor(1, mp_context=ctx) as ex:
        ex.submit(_identity, 1).result()

        def plain():
            b = ex.submit(_identity, a).result()
            assert b.shape == a.shape

        res["pickle"] = _median_ms(plain, n)

        def shm():
            seg = shared_memory.SharedMemory(create=True, size=a.nbytes)
            np.copyto(np.ndarray(a.shape, a.dtype, buffer=seg.buf), a)
            name = ex.submit(_shm_echo, seg.name, a.shape, a.dtype).result()
            seg.close()
            seg.unlink()
            back = shared_memory.SharedMemory(name)
            b = np.ndarray(a.shape, a.dtype, buffer=back.buf)
            assert b[-1] == a[-1]
            del b
            back.close()
            back.unlink()

        res["shared_memory"] = _median_ms(shm, n)
    mempool.install(pool)
    try:
        with cf.ProcessPoolExecutor(1, mp_context=ctx) as ex:
            ex.submit(_identity, 1).result()

            def through_pool():
                b = ex.submit(_identity, a).result()
                assert isinstance(b.base, mempool.Buffer) and b[-1] == a[-1]

            res["mempool"] = _median_ms(through_pool, n)
    finally:
        mempool.uninstall()
    return res


def get_small(pool, loops):
    ref = pool.put(b"x" * 64)
    get = pool.get
    data = b"x" * 64
    best = {}
    for label, fn, arg in (("get", get, ref), ("memoryview", memoryview, data)):
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(loops):
                fn(arg)
            runs.append((time.perf_counter() - t) / loops * 1e9)
        best[label] = statistics.median(runs)
    return best


def put_big(pool, nbytes, n):
    a = np.random.default_rng(1).random(nbytes // 8)
    refs = []

    def put():
        refs.append(pool.put(a))

    def cleanup():
        while refs:
            pool.delete(refs.pop())

    times = []
    copies = []
    for _ in range(n):
        t = time.perf_counter()
        put()
        times.append(time.perf_counter() - t)
        cleanup()
        t = time.perf_counter()
        c = a.copy()
        copies.append(time.perf_counter() - t)
        del c
    return {"put": statistics.median(times) * 1e3,
            "copy": statistics.median(copies) * 1e3}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes and few runs (a smoke test)")
    args = ap.parse_args(argv)
    size = 8 * MIB if args.quick else 64 * MIB
    n = 3 if args.quick else 9
    name = f"pybench-{os.getpid()}"
    with mempool.Pool(name, arena_bytes=1 << 30) as pool:
        try:
            rt = roundtrip(pool, size, n)
            g = get_small(pool, 20_000 if args.quick else 200_000)
            p = put_big(pool, size, n)
        finally:
            mempool.destroy(name)
    mib = size // MIB
    print(f"mempool Python bench (medians of {n} runs; same-run baselines)")
    print(f"roundtrip {mib} MiB float64 to a ProcessPoolExecutor worker and "
          "back:")
    print(f"  mempool.install       {rt['mempool']:8.1f} ms")
    print(f"  default pickling      {rt['pickle']:8.1f} ms   "
          f"mempool is {rt['pickle'] / rt['mempool']:.1f}x faster "
          "(target >= 5x)")
    print(f"  shared_memory + copy  {rt['shared_memory']:8.1f} ms   "
          f"mempool is {rt['shared_memory'] / rt['mempool']:.2f}x "
          "(target >= 1x)")
    print(f"pool.get of a 64 B object {g['get']:8.0f} ns   "
          f"(memoryview(bytes) {g['memoryview']:.0f} ns, ratio "
          f"{g['get'] / g['memoryview']:.2f}; target <= 1000 ns)")
    print(f"put of a {mib} MiB array  {p['put']:8.1f} ms   "
          f"(numpy copy {p['copy']:.1f} ms; put speed = "
          f"{p['copy'] / p['put']:.2f}x the copy; target >= 0.8x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
