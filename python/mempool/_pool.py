# SPDX-License-Identifier: MIT
"""mempool.Pool: the native PoolBase plus the pieces written in Python
(DataFrame/dict conversion for put, pickling of the pool by name)."""
import threading

from . import _mempool


def _frame_columns(df):
    """(names, columns) of a DataFrame for a TABLE object."""
    import pandas as pd

    names, cols = [], []
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0
            and df.index.step == 1):
        names.append("__index_level_0__")
        cols.append(_column(df.index, "index"))
    for i, name in enumerate(df.columns):
        names.append(str(name))
        cols.append(_column(df.iloc[:, i], name))
    if len(set(names)) != len(names):
        raise ValueError("DataFrame column names must be unique as str")
    return names, cols


def _column(col, name):
    import numpy as np

    dtype = getattr(col, "dtype", None)
    kind = getattr(dtype, "kind", "O")
    if kind in "biuf" and isinstance(dtype, np.dtype):
        return np.ascontiguousarray(np.asarray(col))
    if kind in "OSU" or str(dtype) in ("string", "category"):
        import pandas as pd

        values = pd.Series(col).astype(object)
        return values.where(values.notna(), None).tolist()
    raise TypeError(
        f"column {name!r}: dtype {dtype} cannot be stored in a TABLE "
        "(use mempool.dumps for arbitrary objects)")


class Pool(_mempool.PoolBase):
    """Pool(name, create=True, arena_bytes=None, spill_dir=None,
    max_memsize=None, mode=None, max_objects=None, max_refs=None)

    This process's handle on the shared pool *name* (created if *create*
    and missing; max_objects and max_refs - how many buffers and references
    one process can hold at once, else TooManyRefs - apply when creating). A context manager; close() drops the handle once no
    array or buffer from it is alive. Used in a child after fork(), it
    reopens itself transparently (the parent's handle is never used).

    put(obj) stores bytes-likes (BYTES), numpy arrays (ARRAY), lists or
    tuples of str/bytes/None and numpy string/object arrays (STRINGS),
    DataFrames and dicts of equal-length 1-d columns (TABLE). get(ref)
    returns them zero-copy and read-only.
    """

    def _put_other(self, obj, refcounted):
        mod = type(obj).__module__ or ""
        if mod.startswith("pandas") and hasattr(obj, "columns"):
            names, cols = _frame_columns(obj)
            return self._put_table(names, cols, len(obj), refcounted)
        if isinstance(obj, dict):
            names, cols, nrows = [], [], None
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise TypeError("dict tables need str column names")
                col = v if isinstance(v, (list, tuple)) else _column(v, k)
                if hasattr(col, "ndim") and col.ndim != 1:
                    raise ValueError(f"column {k!r} is not 1-d")
                if nrows is None:
                    nrows = len(col)
                elif len(col) != nrows:
                    raise ValueError("columns differ in length")
                names.append(k)
                cols.append(col)
            return self._put_table(names, cols, nrows or 0, refcounted)
        raise TypeError(
            f"cannot store a {type(obj).__name__} in the pool; use "
            "mempool.dumps() for arbitrary objects")

    if _mempool.HAVE_HANDOFF:
        @property
        def names(self):
            """The pool's name directory (mempool.Names, a MutableMapping of
            name -> DRef with wait(name, timeout))."""
            from ._names import Names
            return Names(self)

    def __reduce__(self):
        # Another process attaches to the same pool by name.
        return (_open_named, (self.name,))


_named = {}
_named_lock = threading.Lock()


def _open_named(name):
    """This process's Pool for *name*, opened (never created) on first use
    and shared by everything that refers to the pool by name."""
    with _named_lock:
        pool = _named.get(name)
        if pool is None or pool.closed:
            pool = Pool(name, create=False)
            _named[name] = pool
        return pool


def _remember(pool):
    """Let payloads naming *pool* reuse this handle in this process."""
    with _named_lock:
        if pool.name not in _named or _named[pool.name].closed:
            _named[pool.name] = pool

