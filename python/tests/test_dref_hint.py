# SPDX-License-Identifier: MIT
"""DRefs carry a data hint in the spare bits of off (mempool.h): equality,
hash and order look only at the entry and generation; all 16 bytes travel
through str(), parse() and pickle; a DRef with another hint gets the same
object."""
import pickle

import mempool

ENTRY = 0x00003FFFFFFFFFC0


def test_hint_ignored_by_eq_and_hash():
    a = mempool.DRef(0x1000 | (5 << 46), 0x2300000001)
    b = mempool.DRef(0x1000, 0x2300000001)
    c = mempool.DRef(0x1000 | 3, 0x2300000001)
    assert a == b == c and not (a != b) and hash(a) == hash(b) == hash(c)
    assert not (a < b) and not (b < a) and a <= b and a >= b
    assert {a: 1}[b] == 1
    assert mempool.DRef(0x1040, 0x2300000001) != a
    assert mempool.DRef(0x1000, 0x2300000002) != a
    assert mempool.DRef.parse(str(a)).off == a.off      # all bits travel
    assert pickle.loads(pickle.dumps(a)).off == a.off


def test_minted_refs_hinted(pool):
    ref = pool.put(b"x" * 64)
    assert ref.off & ~ENTRY                             # a hint
    bare = mempool.DRef(ref.off & ENTRY, ref.gen)
    forged = mempool.DRef((ref.off & ENTRY) | (0xFFFFFF << 40 & ~ENTRY),
                          ref.gen)
    for r in (ref, bare, forged):
        assert r == ref
        assert bytes(pool.get(r)) == b"x" * 64
