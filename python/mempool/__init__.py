# SPDX-License-Identifier: MIT
"""mempool: share objects between the processes of one host through one
POSIX shared-memory arena, zero-copy.

>>> import mempool, numpy as np
>>> with mempool.Pool("demo") as pool:
...     ref = pool.put(np.arange(10.0))     # one copy into shared memory
...     a = pool.get(ref)                   # any process: a read-only view
...     float(a.sum())
45.0

Objects are immutable once published. ``pool.get`` returns views whose pin
on the object is dropped when the last Python object using the memory is
collected. See the README's Python section and help(mempool.Pool).
"""
from ._mempool import (  # noqa: F401
    TYPE_ARRAY,
    TYPE_BYTES,
    TYPE_STRINGS,
    TYPE_TABLE,
    Buffer,
    Corrupt,
    DRef,
    Error,
    NotFound,
    PoolFull,
    Reservation,
    Strings,
    TooBig,
    TooManyRefs,
    __version__,
    destroy,
    strerror,
)
from ._mempool import HAVE_HANDOFF  # noqa: F401
from ._types import FileRef, Table  # noqa: F401
from ._pool import Pool  # noqa: F401
from ._pickle import dumps, loads  # noqa: F401
from ._install import install, uninstall  # noqa: F401

if HAVE_HANDOFF:
    from ._mempool import Channel  # noqa: F401
    from ._names import Names  # noqa: F401

__all__ = [
    "Pool", "DRef", "Buffer", "Strings", "Table", "FileRef", "Reservation",
    "Error", "NotFound", "PoolFull", "TooBig", "Corrupt", "TooManyRefs",
    "destroy", "dumps", "loads", "install", "uninstall", "strerror",
]
