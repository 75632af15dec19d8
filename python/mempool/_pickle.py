# SPDX-License-Identifier: MIT
"""mempool.dumps / mempool.loads: pickle protocol 5 with the out-of-band
buffers in the pool.

The hop's lifetime, with the C library's reference handoff
(_mempool.HAVE_HANDOFF): each large buffer becomes a refcounted BYTES
object whose only reference is given into flight with a time-to-live of
HOP_TTL seconds. loads() takes that reference and pins the object; both go
when the last array made from it is collected. The producer may exit at
any time after dumps(); a payload never loaded is deleted by the pool when
the TTL passes; a payload loads once (a second loads raises NotFound). An
array that came out of the pool is sent on without a copy: the sender adds
a reference and gives it.

Without handoff (an older library): each large buffer becomes a plain BYTES object. loads() pins it and deletes
it at once, so its memory is freed when the last array made from it is
collected, whether or not the producer still runs; a payload is therefore
loaded once (a second loads raises NotFound). A payload that is never
loaded is deleted by its producer after HOP_TTL seconds (checked at its
later dumps() calls and by sweep()); if the producer exits first such an
object stays until the pool is destroyed.
"""
import collections
import os
import pickle
import threading
import time

from . import _mempool

#: seconds an unloaded payload's buffers are kept by their producer
HOP_TTL = 600.0
_MAGIC = "mempool-pickle-1"

_inflight = collections.deque()  # (deadline, pool, ref), oldest first
_lock = threading.Lock()


def _forget_inflight():
    # A forked child does not own its parent's payloads.
    _inflight.clear()


os.register_at_fork(after_in_child=_forget_inflight)


def sweep(now=None):
    """Delete this process's payload buffers older than HOP_TTL that were
    never loaded. Returns how many were deleted."""
    now = time.monotonic() if now is None else now
    n = 0
    while True:
        with _lock:
            if not _inflight or _inflight[0][0] > now:
                return n
            _, pool, ref = _inflight.popleft()
        try:
            pool.delete(ref)
            n += 1
        except (_mempool.Error, ValueError):
            pass  # loaded (consumed) already, or the pool is closed


def put_hop(pool, buf):
    """Store *buf* (a contiguous bytes-like) for one load in another
    process (see the module doc for its lifetime)."""
    if _mempool.HAVE_HANDOFF:
        ref = pool.put(buf, refcounted=True)
        try:
            pool.give(ref, ttl=HOP_TTL)
        except BaseException:
            pool.unref(ref)
            raise
        return ref
    sweep()
    ref = pool.put(buf)
    with _lock:
        _inflight.append((time.monotonic() + HOP_TTL, pool, ref))
    return ref


def resend_hop(pool, buf):
    """Send on an object this process got from a hop, without a copy: the
    DRef of *buf* (a Buffer that owns a reference) with a new reference in
    flight, or None when that is not possible."""
    if not (_mempool.HAVE_HANDOFF and isinstance(buf, _mempool.Buffer)
            and buf.owns_ref and buf.pool_name == pool.name):
        return None
    try:
        pool.ref(buf.ref)
    except _mempool.Error:
        return None
    try:
        pool.give(buf.ref, ttl=HOP_TTL)
    except BaseException:
        pool.unref(buf.ref)
        raise
    return buf.ref


def take_hop(pool, ref):
    """The loader's side of put_hop(): a read-only Buffer of the object,
    freed when the Buffer's last user is gone."""
    if _mempool.HAVE_HANDOFF:
        return pool._take_pinned(ref)
    return pool._get_consume(ref)


def dumps(obj, pool, min_size=65536):
    """Pickle *obj* with protocol 5, putting every out-of-band buffer of at
    least *min_size* bytes (numpy arrays, pandas blocks, PickleBuffers) into
    *pool*. Returns bytes that any process can give to loads()."""
    refs = []

    def store(pb):
        with pb.raw() as m:
            if m.nbytes < min_size:
                return True  # in-band
            refs.append(put_hop(pool, m))
        return False

    try:
        data = pickle.dumps(obj, protocol=5, buffer_callback=store)
    except BaseException:
        for r in refs:
            try:
                pool.delete(r)
            except _mempool.Error:
                pass
        raise
    return pickle.dumps(
        (_MAGIC, pool.name, tuple((r.off, r.gen) for r in refs), data),
        protocol=5)


def loads(data, pool=None):
    """Unpickle what dumps() made. Arrays come back as read-only zero-copy
    views of the pool; *pool* may be None to open the payload's pool by
    name."""
    magic, name, refs, payload = pickle.loads(data)
    if magic != _MAGIC:
        raise ValueError("not a mempool.dumps() payload")
    if pool is None:
        from ._pool import _open_named
        pool = _open_named(name)
    elif pool.name != name:
        raise ValueError(f"payload is for pool {name!r}, not {pool.name!r}")
    buffers = [take_hop(pool, _mempool.DRef(off, gen)) for off, gen in refs]
    return pickle.loads(payload, buffers=buffers)
