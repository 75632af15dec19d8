"""Same-host transfers by DRef, decided per connection by the comm handshake.

Every Dask comm starts with a handshake: each side writes
``Comm.handshake_info()`` and keeps the peer's as ``comm.remote_info``. A
worker process with a PoolStore adds its pool identity to that dict (the one
patch of Dask in this package). When a peer asks for keys (the ``get_data``
handler), the worker compares the peer's announced identity with its own:

- same pool: the values leave as SharedRefs (a DRef, 16 bytes plus the
  codec kind); the receiver takes its own pool reference while unpickling,
  then acknowledges; only then does the sender drop the transfer reference it
  took, so the object is never without a holder in between;
- anything else (a worker on another host or pool, the scheduler, a client,
  a peer whose comm was opened before its pool): Dask's own ``get_data``,
  i.e. ordinary serialization and bytes over TCP.

The identity is (pool name, pool uuid, boot id, st_dev and st_ino of the shm
object): two hosts with a pool of the same name, or two mount namespaces
with private /dev/shm, never compare equal.
"""
from __future__ import annotations

import os

from mempool.dask import store as _store

#: Key of the pool identity in the comm handshake.
HANDSHAKE_KEY = "mempool-pool"


def pool_identity(pool, name: str) -> tuple:
    """The identity this worker announces for its open @pool."""
    uuid = pool.stats()["pool"]["uuid"]
    st = os.stat(f"/dev/shm/mempool.{name}")
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = ""
    return (name, uuid, boot, st.st_dev, st.st_ino)


def install_handshake() -> None:
    """Announce this process's pool (if any) in every comm handshake."""
    from distributed.comm import core

    orig = core.Comm.handshake_info
    if getattr(orig, "_mempool", False):
        return

    def handshake_info():
        info = orig()
        store = _store.current_store()
        if store is not None:
            info[HANDSHAKE_KEY] = list(store.identity)
        return info

    handshake_info._mempool = True
    core.Comm.handshake_info = staticmethod(handshake_info)


def same_pool(comm, store) -> bool:
    """Did the peer of @comm announce the pool of @store?"""
    info = getattr(comm, "remote_info", None) or {}
    peer = info.get(HANDSHAKE_KEY)
    return peer is not None and tuple(peer) == store.identity


def install_get_data(worker, store) -> None:
    """Wrap the worker's ``get_data`` handler (see the module docstring)."""
    orig = worker.handlers["get_data"]

    async def get_data(comm, keys=None, who=None, serializers=None,
                       max_connections=None):
        kw = dict(keys=keys, who=who, serializers=serializers,
                  max_connections=max_connections)
        if not same_pool(comm, store):
            store.counters["bytes_sent"] += sum(
                1 for k in keys or () if store.entry(k) is not None)
            return await orig(comm, **kw)
        exports: list = []
        token = _store.EXPORTS.set(exports)
        try:
            return await orig(comm, **kw)
        finally:
            _store.EXPORTS.reset(token)
            for shared in exports:
                store.release_export(shared)
            store.counters["dref_sent"] += len(exports)

    get_data._mempool_orig = orig
    worker.handlers["get_data"] = get_data
