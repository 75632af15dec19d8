"""Host A of the two-host Dask test (test_dask_netns.py), run inside network
namespace A with its own /dev/shm: a scheduler, two workers on pool NAME
(started with the `dask worker` command line and the preload), and the
client. Host B (another namespace, another /dev/shm, another pool of the same
name) contributes one worker. Writes what it saw as JSON to OUT.

usage: dask_netns_host.py IP_A IP_B NAME SPILL_DIR OUT READY_FILE
"""
import asyncio
import json
import os
import subprocess
import sys
import time

import numpy as np
from distributed import Client, Scheduler


def make_array(seed, n=8 << 20):
    return np.random.default_rng(seed).random(n)


def consume(x):
    return float(x.sum())


def counters(dask_worker):
    d = dask_worker.data
    return {"counters": dict(d.counters), "identity": list(d.identity),
            "objects": d.pool.stats()["pool"]["objects"]["used"]}


async def start_scheduler(ip):
    s = Scheduler(host=ip, port=0, dashboard_address=None)
    await s
    return s


def main():
    ip_a, ip_b, name, spill, out, ready = sys.argv[1:7]
    loop = asyncio.new_event_loop()
    sched = loop.run_until_complete(start_scheduler(ip_a))
    addr = sched.address
    with open(ready, "w") as f:         # host B starts its worker on this
        f.write(addr)
    workers = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", addr,
         "--nworkers", "2", "--nthreads", "1", "--host", ip_a,
         "--no-dashboard", "--memory-limit", "2GiB",
         "--preload-nanny", "mempool.dask",
         "--preload", "mempool.dask", "--mempool-pool", name,
         "--mempool-spill-dir", spill, "--mempool-arena-bytes", "512MiB"],
        stdout=subprocess.DEVNULL, stderr=open(out + ".workers-a.log", "w"))
    result = {}
    try:
        loop.run_until_complete(asyncio.sleep(0))

        async def run():
            async with Client(addr, asynchronous=True) as c:
                await c.wait_for_workers(3, timeout=300)
                ws = sorted(c.scheduler_info()["workers"])
                a_side = [w for w in ws if f"//{ip_a}:" in w]
                b_side = [w for w in ws if f"//{ip_b}:" in w]
                a = c.submit(make_array, 1, workers=[a_side[0]], pure=False)
                same = c.submit(consume, a, workers=[a_side[1]], pure=False)
                cross = c.submit(consume, a, workers=[b_side[0]], pure=False)
                b = c.submit(make_array, 2, workers=[b_side[0]], pure=False)
                back = c.submit(consume, b, workers=[a_side[0]], pure=False)
                result["sums"] = await c.gather([same, cross, back])
                got = await c.gather(a)
                result["client_exact"] = bool(np.array_equal(got, make_array(1)))
                result["workers"] = await c.run(counters)
                result["a_side"], result["b_side"] = a_side, b_side
                del a, b, same, cross, back, got
                for _ in range(600):
                    await asyncio.sleep(0.2)
                    result["after_release"] = await c.run(counters)
                    if all(v["objects"] == 0
                           for v in result["after_release"].values()):
                        break
                await c.retire_workers(a_side)

        loop.run_until_complete(asyncio.wait_for(run(), 480))
    finally:
        with open(out, "w") as f:
            json.dump(result, f)
        workers.terminate()
        try:
            workers.wait(30)
        except subprocess.TimeoutExpired:
            workers.kill()
        loop.run_until_complete(sched.close())


if __name__ == "__main__":
    main()
