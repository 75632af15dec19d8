"""mempool.dask: a mempool pool as the shared store of the Dask workers on a host.

Use it from Python::

    from distributed import LocalCluster, Client
    import mempool.dask
    cluster = LocalCluster(n_workers=3, **mempool.dask.worker_kwargs("dask"))

or on the command line (a Dask preload module with its own options)::

    dask worker SCHEDULER --preload mempool.dask --mempool-pool dask \\
        [--mempool-max-memsize 2GiB] [--preload-nanny mempool.dask]

Each worker process opens its own handle on the pool (creating the pool if
it is the first), keeps its task results in it (store.py), hands DRefs to
peers on the same pool and bytes to everyone else (transfer.py), and reports
memory without counting shared pages it only read (memory.py). Closing a
worker drops its references; the last reference to an object deletes it.
"""
from __future__ import annotations

import logging

import click
from dask.utils import parse_bytes

from mempool.dask.store import PoolStore, SharedRef, current_store

__all__ = ["worker_kwargs", "MempoolPlugin", "PoolStore", "SharedRef",
           "current_store", "dask_setup", "dask_teardown"]

logger = logging.getLogger("mempool.dask")

_OPTIONS = ("max_memsize", "arena_bytes", "spill_dir", "min_size",
            "max_objects", "max_refs")


def worker_kwargs(pool_name: str, *, nanny: bool = True, **pool_options) -> dict:
    """Keyword arguments to splat into ``LocalCluster(...)``, ``Nanny(...)``
    or (with ``nanny=False``) ``Worker(...)``.

    @pool_name     the pool every worker opens (created by the first one)
    @nanny         also preload the nanny, whose terminate threshold then
                   looks at private memory (Worker(...) has no nanny: False)
    @pool_options  max_memsize (per worker; bytes or "512MiB"), arena_bytes
                   (when creating), spill_dir, min_size (values smaller than
                   this stay in the worker process; default 64 KiB),
                   max_objects and max_refs (when creating: the object
                   table, and the pool objects one worker can hold at once;
                   mempool_options)
    """
    argv = ["--mempool-pool", str(pool_name)]
    for key, value in pool_options.items():
        if key not in _OPTIONS:
            raise TypeError(f"worker_kwargs: unknown pool option {key!r}")
        if value is not None:
            argv += ["--mempool-" + key.replace("_", "-"), str(value)]
    # Parse every value here (ValueError now): a bad one fails each worker's
    # preload, which Dask only logs before running the worker without the
    # pool.
    MempoolPlugin(str(pool_name), **{k: v for k, v in pool_options.items()
                                     if v is not None})
    out = {"preload": ["mempool.dask"], "preload_argv": argv}
    if nanny:
        out["preload_nanny"] = ["mempool.dask"]
    return out


def _size(value):
    return None if value in (None, "") else parse_bytes(value)


class MempoolPlugin:
    """Worker plugin: open the pool, put a PoolStore in the worker, hook the
    comms and the memory monitor; on teardown drop every reference."""

    name = "mempool"

    def __init__(self, pool_name: str, max_memsize=None, arena_bytes=None,
                 spill_dir=None, min_size="64KiB", max_objects=None,
                 max_refs=None):
        self.pool_name = pool_name
        self.max_objects = int(max_objects) if max_objects else None
        self.max_refs = int(max_refs) if max_refs else None
        self.max_memsize = _size(max_memsize)
        self.arena_bytes = _size(arena_bytes)
        self.spill_dir = spill_dir
        self.min_size = _size(min_size) or 0
        self.pool = None
        self.store = None

    def setup(self, worker):
        import mempool
        from mempool.dask import memory, transfer

        if len(worker.data):
            raise RuntimeError("mempool.dask: the worker already holds data")
        kw = {}
        if self.arena_bytes:
            kw["arena_bytes"] = self.arena_bytes
        if self.spill_dir:
            kw["spill_dir"] = self.spill_dir
        if self.max_memsize:
            kw["max_memsize"] = self.max_memsize
        if self.max_objects:
            kw["max_objects"] = self.max_objects
        if self.max_refs:
            kw["max_refs"] = self.max_refs
        self.pool = mempool.Pool(self.pool_name, create=True, **kw)
        ident = transfer.pool_identity(self.pool, self.pool_name)
        self.store = PoolStore(self.pool, ident, min_size=self.min_size)
        # Swap the (still empty) mapping everywhere the worker keeps it.
        worker.memory_manager.data = self.store
        worker.state.data = self.store
        self.store.install()
        transfer.install_handshake()
        transfer.install_get_data(worker, self.store)
        memory.install_worker_monitor(worker, self.store)
        logger.info("mempool.dask: worker %s stores in pool %r (worker id %d)",
                    worker.address, self.pool_name, self.pool.worker_id)

    def teardown(self, worker):
        if self.store is not None:
            self.store.close()
        if self.pool is not None:
            self.pool.close()
            self.pool = None


_OPTS = [
    click.option("--mempool-pool", default=None,
                 help="Pool the worker stores its data in (required)."),
    click.option("--mempool-max-memsize", default=None,
                 help="This worker's resident limit in the pool, e.g. 2GiB."),
    click.option("--mempool-arena-bytes", default=None,
                 help="Arena size if this worker creates the pool."),
    click.option("--mempool-spill-dir", default=None,
                 help="Spill directory if this worker creates the pool."),
    click.option("--mempool-min-size", default="64KiB", show_default=True,
                 help="Smaller values stay in the worker process."),
    click.option("--mempool-max-objects", default=None,
                 help="Object table size if this worker creates the pool."),
    click.option("--mempool-max-refs", default=None,
                 help="Pool objects one worker can hold at once, if this "
                      "worker creates the pool."),
]


def _with_options(f):
    for opt in reversed(_OPTS):
        f = opt(f)
    return click.command()(f)


@_with_options
def dask_setup(server, mempool_pool, mempool_max_memsize, mempool_arena_bytes,
               mempool_spill_dir, mempool_min_size, mempool_max_objects=None,
               mempool_max_refs=None):
    """Preload entry point, for workers and (with no options) nannies."""
    from distributed import Nanny, Worker

    if isinstance(server, Nanny):
        from mempool.dask import memory

        memory.install_nanny_monitor(server)
        return
    if not isinstance(server, Worker):
        raise click.UsageError("mempool.dask preloads workers and nannies")
    if not mempool_pool:
        raise click.UsageError("mempool.dask needs --mempool-pool NAME")
    plugin = MempoolPlugin(mempool_pool, mempool_max_memsize,
                           mempool_arena_bytes, mempool_spill_dir,
                           mempool_min_size, mempool_max_objects,
                           mempool_max_refs)
    # A pending plugin, not a setup right here: preload failures are only
    # logged, plugin failures stop the worker from starting.
    server._pending_plugins = (*server._pending_plugins, plugin)


def dask_teardown(server):
    """Nothing to do: the plugin's teardown closes the handle."""
