# SPDX-License-Identifier: MIT
"""mempool.Table and mempool.FileRef: the Python-side result types."""
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from . import _mempool

Sequence.register(_mempool.Strings)


class FileRef(NamedTuple):
    """Where an object's bytes are on disk: an absolute path and the payload
    length. Returned by move_to_disk / copy_to_disk / save_to_disk; give it
    to Pool.get_file()."""

    path: str
    len: int


class Table(Mapping):
    """A TABLE object read from the pool: a read-only Mapping from column
    name to a zero-copy ndarray (numeric columns) or mempool.Strings.
    Every column keeps the object pinned.

    ``to_pandas()`` builds a DataFrame whose numeric columns are the pool's
    memory (read-only, no copy); string columns become object columns
    (decoded, a copy)."""

    __slots__ = ("_cols", "nrows", "buffer")

    def __init__(self, columns, nrows, buffer=None):
        self._cols = dict(columns)
        self.nrows = int(nrows)
        #: the pinned object (a mempool.Buffer) all columns point into
        self.buffer = buffer

    def __getitem__(self, name):
        return self._cols[name]

    def __iter__(self):
        return iter(self._cols)

    def __len__(self):
        return len(self._cols)

    def __repr__(self):
        cols = ", ".join(
            f"{k}: {getattr(v, 'dtype', 'str')}" for k, v in self._cols.items())
        return f"<mempool.Table {self.nrows} rows {{{cols}}}>"

    def to_pandas(self, encoding="utf-8"):
        """A pandas.DataFrame over this table. Numeric columns are
        zero-copy read-only views (one block per column, so pandas does not
        consolidate them into a copy); string columns are decoded with
        *encoding* (None keeps bytes)."""
        import numpy as np
        import pandas as pd

        names, values = [], []
        index = None
        for k, v in self._cols.items():
            if isinstance(v, _mempool.Strings):
                v = np.array(v.to_list(encoding), dtype=object)
            if k == "__index_level_0__":
                index = pd.Index(v)
                continue
            names.append(k)
            values.append(v)
        if index is None:
            index = pd.RangeIndex(self.nrows)
        try:
            from pandas.core.internals import BlockManager
            from pandas.core.internals.api import make_block

            blocks = [make_block(v.reshape(1, -1), placement=[i])
                      for i, v in enumerate(values)]
            mgr = BlockManager(blocks, [pd.Index(names, dtype=object), index])
            return pd.DataFrame(mgr)
        except (ImportError, TypeError, AttributeError):  # other pandas
            return pd.DataFrame(dict(zip(names, values)), index=index,
                                copy=False)


_mempool._set_types(Table, FileRef)
