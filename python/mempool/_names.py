# SPDX-License-Identifier: MIT
"""pool.names: the pool-wide name directory as a MutableMapping of
name -> DRef (needs the C library's handoff primitives)."""
from collections.abc import MutableMapping


class Names(MutableMapping):
    """The pool's name directory: ``names[n] = ref`` binds (replacing),
    ``names[n]`` looks up (KeyError if unbound), ``del names[n]`` unbinds,
    iteration lists the bound names, ``wait(n, timeout)`` waits for a
    binding (TimeoutError). A name bound to a refcounted object holds a
    reference of its own; a plain object's name lasts while the object
    does."""

    __slots__ = ("_pool",)

    def __init__(self, pool):
        self._pool = pool

    def __getitem__(self, name):
        return self._pool._name_get(name)

    def __setitem__(self, name, ref):
        self._pool._name_put(name, ref, True)

    def __delitem__(self, name):
        self._pool._name_drop(name)

    def __iter__(self):
        return iter([n for n, _ in self._pool._name_list()])

    def __len__(self):
        return len(self._pool._name_list())

    def items(self):
        return self._pool._name_list()

    def bind(self, name, ref):
        """Bind *name* only if it is free (KeyError if it is bound)."""
        self._pool._name_put(name, ref, False)

    def wait(self, name, timeout=None):
        """The DRef bound to *name*, waiting up to *timeout* seconds (None:
        forever) for it to be bound."""
        return self._pool._name_get(name, timeout)

    def __repr__(self):
        return f"<mempool.Names of {self._pool.name!r}: {len(self)} names>"
