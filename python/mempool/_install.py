# SPDX-License-Identifier: MIT
"""mempool.install(pool): multiprocessing and concurrent.futures pass numpy
arrays and pandas DataFrames of at least min_size bytes through the pool.

It registers reducers with multiprocessing's ForkingPickler, which pickles
everything multiprocessing.Pool, ProcessPoolExecutor and
multiprocessing.Queue send. A large array is stored once in the pool and
the message carries the pool's name, a DRef, dtype and shape; the receiving
process opens the pool by name on first use (whatever the start method)
and gets a read-only zero-copy view. A process that receives such a
payload installs the same reducers for itself, so results travel back
through the pool as well (a spawn/forkserver child that never received
one can call install() in its initializer). What the pool cannot take (no
room, too big) is sent by value, as without install(). Lifetime: see
mempool._pickle.
"""
import pickle

from . import _mempool, _pickle
from ._pool import _open_named, _remember

_config = None  # (pool, min_size) once installed


def install(pool, min_size=65536):
    """Route numpy arrays and pandas DataFrames of at least *min_size*
    bytes that multiprocessing pickles through *pool* (arguments, results,
    queue items). Returns *pool*."""
    global _config
    from multiprocessing.reduction import ForkingPickler

    _remember(pool)
    _config = (pool, int(min_size))
    try:
        import numpy as np
        ForkingPickler.register(np.ndarray, _reduce_ndarray)
    except ImportError:
        pass
    try:
        import pandas as pd
        ForkingPickler.register(pd.DataFrame, _reduce_frame)
    except ImportError:
        pass
    return pool


def uninstall():
    """Stop routing through the pool (in this process)."""
    global _config
    from multiprocessing.reduction import ForkingPickler

    _config = None
    for name in ("numpy.ndarray", "pandas.DataFrame"):
        for t in list(ForkingPickler._extra_reducers):
            if f"{t.__module__}.{t.__name__}".endswith(name.split(".")[1]):
                if ForkingPickler._extra_reducers[t] in (_reduce_ndarray,
                                                         _reduce_frame):
                    del ForkingPickler._extra_reducers[t]


def _auto_install(name, min_size):
    if _config is None:
        install(_open_named(name), min_size)


def _reduce_ndarray(a):
    cfg = _config
    if cfg is None or a.dtype.hasobject or a.nbytes < cfg[1]:
        return a.__reduce_ex__(pickle.DEFAULT_PROTOCOL)
    pool, min_size = cfg
    base = a.base
    while base is not None and not isinstance(base, _mempool.Buffer):
        base = getattr(base, "base", None)
    if isinstance(base, _mempool.Buffer) and len(base) == a.nbytes and \
            base.address == a.__array_interface__["data"][0] and \
            (a.flags.c_contiguous or a.flags.f_contiguous):
        # An array that came through the pool goes on without a copy.
        ref = _pickle.resend_hop(pool, base)
        if ref is not None:
            order = "C" if a.flags.c_contiguous else "F"
            return (_rebuild_ndarray, (pool.name, min_size, ref.off, ref.gen,
                                       a.dtype, a.shape, order))
    if a.flags.c_contiguous:
        order = "C"
    elif a.flags.f_contiguous:
        order = "F"
    else:
        import numpy as np
        a, order = np.ascontiguousarray(a), "C"
    try:
        ref = _pickle.put_hop(pool, pickle.PickleBuffer(a).raw())
    except _mempool.Error:
        # No room (TooBig, PoolFull, TooManyRefs...): send it by value, as
        # multiprocessing would without install(), rather than fail the
        # send (a Queue's feeder thread would drop the item).
        return a.__reduce_ex__(pickle.DEFAULT_PROTOCOL)
    return (_rebuild_ndarray,
            (pool.name, min_size, ref.off, ref.gen, a.dtype, a.shape, order))


def _rebuild_ndarray(name, min_size, off, gen, dtype, shape, order):
    import numpy as np

    from ._mempool import DRef

    _auto_install(name, min_size)
    buf = _pickle.take_hop(_open_named(name), DRef(off, gen))
    return np.ndarray(shape, dtype=dtype, buffer=buf, order=order)


def _reduce_frame(df):
    cfg = _config
    if cfg is not None:
        pool, min_size = cfg
        if int(df.memory_usage(index=True, deep=False).sum()) >= min_size:
            try:
                data = _pickle.dumps(df, pool, min_size)
            except _mempool.Error:
                pass  # no room: by value, as for arrays
            else:
                return (_rebuild_frame, (pool.name, min_size, data))
    return df.__reduce_ex__(pickle.DEFAULT_PROTOCOL)


def _rebuild_frame(name, min_size, data):
    _auto_install(name, min_size)
    return _pickle.loads(data, _open_named(name))
