"""The Dask worker's ``data`` mapping, kept in a mempool pool.

A Dask worker stores every task result and every fetched dependency in one
MutableMapping (normally a zict-based SpillBuffer). :class:`PoolStore`
replaces it: a value of at least ``min_size`` bytes (by ``dask.sizeof``)
becomes one *refcounted* pool object, and the worker holds exactly one pool
reference per key:

- numpy arrays of the codec dtypes go through the ARRAY codec
  (``pool.put``); ``store[key]`` is a read-only zero-copy view;
- pandas DataFrames the TABLE codec stores exactly (unique str column
  names, numeric/bool columns or all-str object columns, a RangeIndex kept
  beside the DRef) go through it; ``store[key]`` is ``Table.to_pandas()``,
  numeric columns zero-copy;
- anything else (other DataFrames included: their index, dtypes and names
  come back exact) is pickled with protocol 5 into one object: a small header, the
  pickle stream, then each out-of-band buffer 64-byte aligned. Loading maps
  the buffers, so numeric columns are zero-copy views too;
- smaller values stay in this process (a plain dict): a pool object per
  integer would cost more than it saves, and they cross comms cheaply.

Why refcounted objects with one reference per holder: a key held by several
workers of the same pool is one object; releasing the key on one worker drops
only that worker's reference; the last one deletes the object; a worker killed
with -9 loses its references when the pool reaps it, so nothing leaks.

Reference capacity: a worker's pins and references share its cell table of
the pool's ``max_refs`` cells, and a table full of references leaves no
pin for reading a key back. So the store holds at most ``max_refs`` minus a
headroom (:func:`ref_headroom`) references; past that, results stay in
process (``counters["kept_private"]``), and a dependency a same-pool peer
hands over by DRef is copied into process memory instead of referenced
(``counters["ref_fallback"]``, logged at debug level) - also when the
reference is refused with ``mempool.TooManyRefs`` below the cap. The
computation is the same, only without sharing for those keys.

Spilling is the pool's: the worker's ``max_memsize`` makes its sets spill its
least recently used objects to files that gets map back; ``evict()`` and
``fast`` implement Dask's manual-evict protocol so Dask's own spill threshold
can also push objects to disk (``pool.move_to_disk``). ``spilled_total`` feeds
Dask's metrics.
"""
from __future__ import annotations

import contextvars
import logging
import pickle
import struct
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Any, Iterator, NamedTuple

from dask.sizeof import sizeof

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy is a Dask dependency here
    np = None

import mempool

logger = logging.getLogger("mempool.dask")

#: dtypes the pool's ARRAY codec stores natively (native byte order only).
_CODEC_KINDS = {"i", "u", "f", "b"}
_MAXDIM = 8

#: Header of a pickled object: magic, pickle length, buffer count; then one
#: (offset, length) pair per out-of-band buffer.
_MAGIC = b"MPDASK01"
_HEAD = struct.Struct("<8sQQ")
_PAIR = struct.Struct("<QQ")
_ALIGN = 64


class Entry(NamedTuple):
    """One key's pool object as this worker holds it."""

    ref: Any        # mempool.DRef; this worker holds one reference on it
    kind: str       # "array", "table" or "pickle"
    nbytes: int     # dask.sizeof() of the value when it was stored
    meta: Any = None  # "table": the RangeIndex (start, stop, step, name)


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _codec_array(value) -> bool:
    """True if the ARRAY codec stores this ndarray exactly."""
    if np is None or type(value) is not np.ndarray:
        return False
    dt = value.dtype
    return (_numeric(dt) and not dt.fields and dt.subdtype is None
            and 1 <= value.ndim <= _MAXDIM)


def _numeric(dt) -> bool:
    return (np is not None and isinstance(dt, np.dtype) and dt.kind in _CODEC_KINDS
            and dt.isnative and (dt.kind != "f" or dt.itemsize in (4, 8)))


def _codec_frame(value):
    """The RangeIndex of a DataFrame the TABLE codec stores exactly, as
    (start, stop, step, name); None if the frame needs pickling."""
    pd = sys.modules.get("pandas")
    if pd is None or type(value) is not pd.DataFrame or value.attrs:
        return None
    idx, cols = value.index, value.columns
    if (type(idx) is not pd.RangeIndex or type(cols) is not pd.Index
            or cols.name is not None or not cols.is_unique
            or not all(type(c) is str for c in cols)
            or "__index_level_0__" in cols):
        return None
    for _, col in value.items():
        if _numeric(col.dtype):
            continue
        if (col.dtype == object
                and pd.api.types.infer_dtype(col, skipna=False) == "string"):
            continue
        return None
    return (idx.start, idx.stop, idx.step, idx.name)


def pack_pickle(value) -> bytearray:
    """Pickle @value (protocol 5) with its out-of-band buffers appended."""
    buffers: list = []
    stream = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    head = _HEAD.size + _PAIR.size * len(raws)
    pos = _align(head + len(stream))
    spans = []
    for raw in raws:
        spans.append((pos, raw.nbytes))
        pos = _align(pos + raw.nbytes)
    out = bytearray(pos)
    _HEAD.pack_into(out, 0, _MAGIC, len(stream), len(raws))
    for i, span in enumerate(spans):
        _PAIR.pack_into(out, _HEAD.size + i * _PAIR.size, *span)
    out[head:head + len(stream)] = stream
    for (off, n), raw in zip(spans, raws):
        out[off:off + n] = raw.cast("B")
    return out


def unpack_pickle(buf) -> Any:
    """Inverse of pack_pickle over a (read-only) buffer: buffers stay views."""
    mv = memoryview(buf).cast("B")
    magic, slen, nbuf = _HEAD.unpack_from(mv, 0)
    if magic != _MAGIC:
        raise mempool.Corrupt(f"not a mempool.dask pickled object: {magic!r}")
    head = _HEAD.size + _PAIR.size * nbuf
    buffers = []
    for i in range(nbuf):
        off, n = _PAIR.unpack_from(mv, _HEAD.size + i * _PAIR.size)
        if off + n > len(mv):
            raise mempool.Corrupt("pickled object buffer out of bounds")
        buffers.append(mv[off:off + n])
    return pickle.loads(mv[head:head + slen], buffers=buffers)


class SharedRef:
    """What crosses a comm between two workers of the same pool: the DRef.

    Pickling sends the text DRef, the codec kind, the sizeof and the pool
    identity; unpickling (in the receiving worker) takes a pool reference at
    once, *before* the receiver acknowledges the transfer, so the sender may
    drop its transfer reference as soon as it reads the acknowledgement.
    """

    __slots__ = ("entry", "identity")

    def __init__(self, entry: Entry, identity: tuple):
        self.entry = entry
        self.identity = identity

    def __reduce__(self):
        e = self.entry
        return (_receive, (str(e.ref), e.kind, e.nbytes, self.identity, e.meta))


class Received:
    """A fetched DRef holding one pool reference until a store adopts it.

    If Dask drops the fetched value without storing it (the key was released
    while in flight), the finalizer gives the reference back.
    """

    __slots__ = ("entry", "_fin", "__weakref__")

    def __init__(self, entry: Entry, store: "PoolStore"):
        self.entry = entry
        self._fin = weakref.finalize(self, store._unref_quiet, entry.ref)

    def adopt(self) -> Entry:
        self._fin.detach()
        return self.entry


sizeof.register(Received)(lambda r: r.entry.nbytes)
sizeof.register(SharedRef)(lambda r: r.entry.nbytes)

#: Set (to a list) by transfer.get_data while it serves a peer on the same
#: pool: __getitem__ then hands out SharedRefs and records them there.
EXPORTS: "contextvars.ContextVar[list | None]" = contextvars.ContextVar(
    "mempool_dask_exports", default=None)

#: The store of this worker process (one Dask worker per process); the
#: receiving side of a DRef transfer needs it while unpickling.
_current: "PoolStore | None" = None


def current_store() -> "PoolStore | None":
    return _current


def _receive(text: str, kind: str, nbytes: int, identity, meta=None):
    store = _current
    if store is None or tuple(identity) != store.identity:
        raise RuntimeError("mempool.dask: a DRef of another pool reached "
                           "this worker")
    entry = Entry(mempool.DRef.parse(text), kind, nbytes, meta)
    # The sender holds a transfer reference until we acknowledge, so the
    # object lives while we reference or copy it. NotFound (an OSError) if
    # the sender died before we got here: Dask treats an OSError in a fetch
    # like a network failure and refetches or recomputes the key.
    if store.refs_full():
        return store.fallback_copy(entry, "at its reference cap")
    try:
        store.pool.ref(entry.ref)
    except mempool.TooManyRefs:
        return store.fallback_copy(entry, "TooManyRefs")
    store.counters["dref_received"] += 1
    return Received(entry, store)


def ref_headroom(max_refs: int) -> int:
    """Cells of a ``max_refs`` table a PoolStore leaves for pins (the views
    of running tasks' inputs) and transfers: 1/16, 64 to 1024."""
    return min(max(64, max_refs // 16), 1024)


def _private_copy(pool, entry: Entry):
    """The value of @entry as this process's own memory (one pin while
    copying, nothing held after)."""
    if entry.kind == "pickle":
        with pool.view(entry.ref) as buf:
            raw = bytearray(buf)
        return unpack_pickle(raw)
    obj = pool.get(entry.ref)
    if entry.kind == "array":
        out = np.array(obj, copy=True)
        del obj                            # the pin goes with the view
        return out
    import pandas as pd

    frame = obj.to_pandas().copy(deep=True)
    if obj.buffer is not None:
        obj.buffer.release()
    start, stop, step, name = entry.meta
    frame.index = pd.RangeIndex(start, stop, step, name=name)
    return frame


class PoolStore(MutableMapping):
    """A Dask worker's ``data``: large values in the pool, one reference each.

    @pool      an open mempool.Pool of this process
    @identity  the pool identity announced in comm handshakes (transfer.py)
    @min_size  values smaller than this (dask.sizeof) stay in process memory
    """

    def __init__(self, pool, identity: tuple = (), min_size: int = 65536):
        self.pool = pool
        self.identity = tuple(identity)
        self.min_size = int(min_size)
        self._small: dict = {}
        self._objs: "OrderedDict[str, Entry]" = OrderedDict()  # LRU first
        self._lock = threading.RLock()
        # arrays handed out by __getitem__, by id: a task that returns its
        # input unchanged stores a second reference, not a second copy
        self._views: "weakref.WeakValueDictionary[int, Any]" = \
            weakref.WeakValueDictionary()
        self._view_refs: dict = {}
        self.counters = {"dref_sent": 0, "dref_received": 0, "bytes_sent": 0,
                         "stored": 0, "evicted": 0, "kept_private": 0,
                         "ref_fallback": 0}
        try:
            max_refs = int(pool.stats()["pool"]["objects"]["max_refs"])
        except (mempool.Error, KeyError, TypeError, ValueError):
            max_refs = 0
        #: references this store holds at most (module docstring)
        self.ref_cap = (max_refs - ref_headroom(max_refs) if max_refs
                        else sys.maxsize)

    # -- MutableMapping ---------------------------------------------------
    def __setitem__(self, key, value) -> None:
        if isinstance(value, Received):
            entry = value.adopt()
        else:
            entry = self._encode(value)
        with self._lock:
            if key in self:
                self._drop(key)
            if entry is None:
                self._small[key] = value
            else:
                self._objs[key] = entry
                self.counters["stored"] += 1

    def __getitem__(self, key):
        with self._lock:
            if key in self._small:
                return self._small[key]
            entry = self._objs[key]
            exports = EXPORTS.get()
            if exports is not None:          # serving a same-pool peer
                shared = self.export(key)
                exports.append(shared)
                return shared
            self._objs.move_to_end(key)
        return self._decode(entry)

    def __delitem__(self, key) -> None:
        with self._lock:
            if key not in self:
                raise KeyError(key)
            self._drop(key)

    def __contains__(self, key) -> bool:
        return key in self._objs or key in self._small

    def __iter__(self) -> Iterator:
        with self._lock:
            keys = list(self._small) + list(self._objs)
        return iter(keys)

    def __len__(self) -> int:
        return len(self._small) + len(self._objs)

    def __repr__(self) -> str:
        return (f"<PoolStore pool={self.identity[:1]} objects={len(self._objs)}"
                f" in-process={len(self._small)}>")

    # -- pool objects -----------------------------------------------------
    def refs_full(self) -> bool:
        """Does this store hold its cap of references (module docstring)?"""
        return len(self._objs) >= self.ref_cap

    def fallback_copy(self, entry: Entry, why: str):
        """A fetched DRef this worker cannot reference: copy its value."""
        value = _private_copy(self.pool, entry)
        self.counters["ref_fallback"] += 1
        logger.debug("mempool.dask: %s: fetched %s copied into the worker "
                     "(%d references held)", why, entry.ref, len(self._objs))
        return value

    def entry(self, key) -> "Entry | None":
        """The pool object behind @key, or None if it is kept in process."""
        return self._objs.get(key)

    def export(self, key) -> SharedRef:
        """A SharedRef for @key, with one extra (transfer) reference taken;
        the caller gives it back with release_export()."""
        entry = self._objs[key]
        self.pool.ref(entry.ref)
        return SharedRef(entry, self.identity)

    def release_export(self, shared: SharedRef) -> None:
        self._unref_quiet(shared.entry.ref)

    def _encode(self, value) -> "Entry | None":
        """The pool object for @value, or None to keep it in process: small,
        not picklable, or the pool has no room for it (PoolFull, TooBig:
        the task still succeeds, its result stays private)."""
        try:
            return self._encode_pool(value)
        except mempool.Error:
            self.counters["kept_private"] += 1
            return None

    def _encode_pool(self, value) -> "Entry | None":
        nbytes = sizeof(value)
        if nbytes < self.min_size:
            return None
        if self.refs_full():
            raise mempool.TooManyRefs("mempool.dask: reference cap reached")
        if self._views.get(id(value)) is value:
            ref = self._view_refs.get(id(value))
            try:
                self.pool.ref(ref)
                return Entry(ref, "array", nbytes)
            except (mempool.Error, TypeError, ValueError):
                pass                       # deleted meanwhile: copy it
        if _codec_array(value):
            ref = self.pool.put(value, refcounted=True)
            return Entry(ref, "array", nbytes)
        index = _codec_frame(value)
        if index is not None:
            try:
                ref = self.pool.put(value, refcounted=True)
                return Entry(ref, "table", nbytes, index)
            except UnicodeEncodeError:
                pass       # a str the codec's UTF-8 cannot hold: pickled
        try:
            packed = pack_pickle(value)
        except Exception:
            return None          # not picklable: Dask keeps it in process too
        ref = self.pool.put(packed, refcounted=True)
        del packed
        return Entry(ref, "pickle", nbytes)

    def _decode(self, entry: Entry):
        obj = self.pool.get(entry.ref)
        if entry.kind == "array":
            key = id(obj)
            self._views[key] = obj
            self._view_refs[key] = entry.ref
            weakref.finalize(obj, self._view_refs.pop, key, None)
            return obj
        if entry.kind == "table":
            import pandas as pd

            frame = obj.to_pandas()
            start, stop, step, name = entry.meta
            frame.index = pd.RangeIndex(start, stop, step, name=name)
            return frame
        return unpack_pickle(obj)

    def _drop(self, key) -> None:
        if key in self._small:
            del self._small[key]
            return
        entry = self._objs.pop(key, None)
        if entry is not None:
            self._unref_quiet(entry.ref)

    def _unref_quiet(self, ref) -> None:
        try:
            self.pool.unref(ref)
        except mempool.NotFound:
            pass                  # the pool was destroyed, or reaped us
        except (mempool.Error, ValueError):
            pass                  # closed handle at interpreter exit

    def close(self) -> None:
        """Drop every reference this store holds (the keys stay Dask's)."""
        global _current
        with self._lock:
            for entry in self._objs.values():
                self._unref_quiet(entry.ref)
            self._objs.clear()
            self._small.clear()
        if _current is self:
            _current = None

    def install(self) -> None:
        """Make this the process's store for incoming DRef transfers."""
        global _current
        _current = self

    # -- manual-evict protocol (distributed.spill.ManualEvictProto) --------
    def _infos(self):
        out = []
        for key, entry in list(self._objs.items()):
            try:
                out.append((key, entry, self.pool.info(entry.ref)))
            except mempool.Error:
                continue
        return out

    @property
    def fast(self) -> list:
        """Keys whose objects are in the arena and charged to this worker:
        what evict() can still move to disk (Dask only tests emptiness)."""
        me = self.pool.worker_id
        return [k for k, _, i in self._infos()
                if i["in_memory"] and i["owner"] == me]

    def evict(self) -> int:
        """Move this worker's least recently used in-memory object to disk.
        @return its sizeof, or -1 if nothing could be evicted."""
        me = self.pool.worker_id
        for key, entry, info in self._infos():        # LRU first
            if not info["in_memory"] or info["owner"] != me:
                continue
            try:
                self.pool.move_to_disk(entry.ref)
            except mempool.Error:
                continue
            self.counters["evicted"] += 1
            return entry.nbytes
        return -1

    # -- accounting (memory.py explains the figures) -----------------------
    def shares(self) -> tuple[int, int, int, int]:
        """(in-memory share bytes, sizeof not in memory here, disk share
        bytes, in-memory sizeof) over this worker's pool objects.

        An object referenced by R workers counts 1/R at each of them, so
        the figures summed over the workers of a pool count it once: the
        byte shares exactly (pool.share() rounds so that they add up to the
        object's length), the sizeof shares to within R - 1."""
        mem_bytes = away_sizeof = disk_bytes = mem_sizeof = 0
        for _, entry, info in self._infos():
            refs = max(int(info.get("refs", 1)), 1)
            try:
                share = self.pool.share(entry.ref)
            except mempool.Error:
                continue
            if info["in_memory"]:
                mem_bytes += share
                mem_sizeof += entry.nbytes // refs
                away_sizeof += entry.nbytes - entry.nbytes // refs
            else:
                disk_bytes += share
                away_sizeof += entry.nbytes
        return mem_bytes, away_sizeof, disk_bytes, mem_sizeof

    @property
    def spilled_total(self):
        """Dask's (memory, disk) spilled figures: the sizeof of keys whose
        bytes are not charged to this worker's memory (on disk, or the part
        of a shared object other workers carry), and the bytes on disk."""
        from distributed.spill import SpilledSize

        _, away, disk, _ = self.shares()
        return SpilledSize(away, disk)
