# SPDX-License-Identifier: MIT
"""Functions run in child processes by the process tests (importable by
spawn and forkserver children)."""
import os
import time

import numpy as np

import mempool


def describe(a):
    """What a child sees: zero-copy pool memory? read-only? the sum."""
    base = a
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return (type(base).__name__, bool(a.flags.writeable), float(a.sum()),
            os.getpid())


def double(a):
    return a * 2


def frame_stats(df):
    return (float(df["x"].sum()), df.shape, df.assign(y=df["x"] * 3))


def queue_echo(qin, qout):
    a = qin.get()
    qout.put((describe(a), a + 1))


def hold_and_wait(qin, ready):
    held = [qin.get() for _ in range(3)]
    ready.put([describe(a) for a in held])
    time.sleep(60)


def open_and_put(name, out):
    p = mempool.Pool(name, create=False)
    out.put(mempool.dumps({"a": np.arange(1 << 16, dtype="f8")}, p))
