"""Memory figures that do not lie about shared pool pages.

Linux counts in a process's RSS every page of the pool's shared mapping that
the process touched, including objects it only read (a reader's RSS went
26 -> 91 MiB after reading one 64 MiB object) and pages that were freed and
reused since. Dask's memory monitor would charge those pages to every worker
that looked at them: pause, spill and terminate on memory that is neither
theirs nor private. So, for a worker with a PoolStore:

- process memory (``worker.monitor.get_process_memory``: the pause and spill
  thresholds, the heartbeat's ``metrics["memory"]``, the dashboard) is the
  private part of RSS (``VmRSS - RssShmem`` from /proc) plus the worker's
  *share* of the pool objects it holds that are in the arena: an object held
  by R workers counts len/R at each, so the pool is counted once across them;
- ``data.spilled_total`` reports as "spilled" the sizeof of what is not
  charged to this worker's memory (objects on disk, and the other workers'
  shares of shared objects), so the scheduler's managed memory
  (``ws.nbytes - spilled.memory``) sums each shared object once too;
- the nanny's terminate threshold (``--preload-nanny mempool.dask``, on by
  default in worker_kwargs) looks at the worker's private memory only: the
  pool's own limits (arena size, max_memsize) bound its shared memory.
"""
from __future__ import annotations

import logging
from functools import partial

logger = logging.getLogger("mempool.dask")


def _status(pid) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "RssShmem:", "RssAnon:", "RssFile:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0]) * 1024
    return out


def private_bytes(pid="self") -> int:
    """Resident memory of @pid that is not shared memory (RSS - RssShmem)."""
    s = _status(pid)
    return s.get("VmRSS", 0) - s.get("RssShmem", 0)


def install_worker_monitor(worker, store) -> None:
    """Make the worker's process memory private RSS + its pool share."""

    def get_process_memory() -> int:
        return private_bytes() + store.shares()[0]

    worker.monitor.get_process_memory = get_process_memory


def _nanny_monitor(mm, nanny) -> None:
    """NannyMemoryManager.memory_monitor on private memory (see module doc)."""
    from distributed.core import Status

    proc = getattr(nanny.process, "process", None) if nanny.process else None
    if nanny.status != Status.running or proc is None or proc.pid is None:
        return
    try:
        memory = private_bytes(proc.pid)
    except OSError:
        return
    if memory / mm.memory_limit <= mm.memory_terminate_fraction:
        return
    if mm._last_terminated_pid != proc.pid:
        logger.warning("Worker %s (pid=%d) exceeded %.0f%% memory budget "
                       "(private memory). Restarting...", nanny.worker_address,
                       proc.pid, mm.memory_terminate_fraction * 100)
        mm._last_terminated_pid = proc.pid
        proc.terminate()
    else:
        proc.kill()


def install_nanny_monitor(nanny) -> None:
    pc = nanny.periodic_callbacks.get("memory_monitor")
    if pc is not None:
        pc.callback = partial(_nanny_monitor, nanny.memory_manager, nanny)
