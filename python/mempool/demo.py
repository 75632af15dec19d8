# SPDX-License-Identifier: MIT
"""A short tour: python3 -m mempool.demo

Puts a DataFrame and an array into a fresh pool, reads them back
zero-copy, then lets a process pool work on arrays that travel through the
pool both ways (mempool.install), and shows the pool's figures."""
import concurrent.futures as cf
import gc
import os
import time

import numpy as np

import mempool


def _column_sums(a):
    return a.sum(axis=0), a[:, :4] * 2  # a small result and a large one


def main():
    name = f"pydemo-{os.getpid()}"
    with mempool.Pool(name, arena_bytes=512 << 20) as pool:
        try:
            ref = pool.put(np.arange(10.0))
            print("array  ", ref, "->", pool.get(ref))
            try:
                import pandas as pd
                df = pd.DataFrame({"x": np.arange(5), "s": list("abcde")})
                print("table  ", pool.get(pool.put(df)).to_pandas()
                      .to_dict("list"))
            except ImportError:
                pass
            mempool.install(pool)
            arrays = [np.random.default_rng(i).random((1 << 18, 8))
                      for i in range(4)]
            t = time.perf_counter()
            with cf.ProcessPoolExecutor(2) as ex:
                out = list(ex.map(_column_sums, arrays))
            dt = time.perf_counter() - t
            ok = all(np.allclose(s, a.sum(axis=0)) for (s, _), a in
                     zip(out, arrays))
            print(f"process pool: 4 x {arrays[0].nbytes >> 20} MiB arrays "
                  f"there and back in {dt * 1e3:.0f} ms, results "
                  f"{'match' if ok else 'DIFFER'}; result arrays are "
                  f"{type(out[0][1].base).__name__} views")
            totals = pool.stats()["totals"]
            print(f"pool figures: {totals['sets']} sets, {totals['gets']} "
                  f"gets, {totals['deletes']} deletes")
            del out
            gc.collect()
            mempool.uninstall()
            pool.reap()  # the workers exited without closing
            pool.check()
            return 0 if ok else 1
        finally:
            mempool.destroy(name)


if __name__ == "__main__":
    raise SystemExit(main())
