# SPDX-License-Identifier: MIT
"""How many objects one process can hold (the pool's max_refs), the error
at the limit, and exact shares of shared objects (Pool.share)."""
import multiprocessing as mp

import pytest

import mempool
from conftest import pool_name


@pytest.fixture
def big(name, tmp_path):
    p = mempool.Pool(name, arena_bytes=128 << 20, spill_dir=str(tmp_path),
                     max_objects=65536, max_refs=32768)
    yield p
    p.close()


def test_hold_20000_refcounted(big):
    refs = [big.put(i.to_bytes(8, "little"), refcounted=True)
            for i in range(20000)]
    assert big.stats()["pool"]["objects"]["used"] == 20000
    assert big.stats()["pool"]["objects"]["max_refs"] == 32768
    for i in (0, 777, 19999):
        assert bytes(big.get(refs[i])) == i.to_bytes(8, "little")
        assert big.info(refs[i])["refs"] == 1
    for r in refs:
        big.unref(r)
    assert big.stats()["pool"]["objects"]["used"] == 0


def test_limit_raises_too_many_refs_and_loses_nothing(name, tmp_path):
    with mempool.Pool(name, arena_bytes=32 << 20, spill_dir=str(tmp_path),
                      max_refs=1024) as p:
        refs = []
        with pytest.raises(mempool.TooManyRefs) as ei:
            for i in range(2000):
                refs.append(p.put(b"x" * 100, refcounted=True))
        assert ei.value.errno == 105                      # ENOBUFS
        assert isinstance(ei.value, mempool.Error)
        assert 1024 <= len(refs) <= 1024 + 128
        # the failed put stored nothing; every held object is intact
        assert p.stats()["pool"]["objects"]["used"] == len(refs)
        assert all(p.info(r)["refs"] == 1 for r in refs)
        with pytest.raises(mempool.TooManyRefs):
            p.get(refs[0])                   # a buffer needs a pin cell
        p.unref(refs.pop())
        assert bytes(p.get(refs[0])) == b"x" * 100
        for r in refs:
            p.unref(r)
        assert p.stats()["pool"]["objects"]["used"] == 0


def _holder(name, text, nrefs, conn):
    with mempool.Pool(name, create=False) as p:
        r = mempool.DRef.parse(text)
        for _ in range(nrefs):
            p.ref(r)
        conn.send(p.worker_id)
        conn.recv()                         # all holders are in: measure
        conn.send(p.share(r))
        conn.recv()
        for _ in range(nrefs):
            p.unref(r)


def test_shares_add_up_to_the_bytes(pool):
    """R references over several holders: the shares (each holder's own
    figure) add up to exactly len, for lengths not divisible by R."""
    ctx = mp.get_context("fork")
    for length, counts in ((1000, (1, 1, 1)), (64 * 1024 + 7, (2, 1, 3)),
                           (1, (1, 2))):
        r = pool.put(b"z" * length, refcounted=True)
        kids = []
        for n in counts:
            a, b = ctx.Pipe()
            proc = ctx.Process(target=_holder, args=(pool.name, str(r), n, b))
            proc.start()
            kids.append((proc, a))
        for _, a in kids:
            assert a.poll(30)
            a.recv()
        pool.unref(r)                      # the creator lets go: R = sum
        assert pool.info(r)["refs"] == sum(counts)
        for _, a in kids:
            a.send(None)
        shares = [a.recv() for _, a in kids]
        assert sum(shares) == length, (length, counts, shares)
        assert all(s > 0 for s in shares) or length < sum(counts)
        for proc, a in kids:
            a.send(None)
            proc.join(30)
            assert proc.exitcode == 0
        with pytest.raises(mempool.NotFound):
            pool.info(r)


def test_share_of_a_plain_object_is_refused(pool):
    r = pool.put(b"plain")
    with pytest.raises(mempool.Error) as ei:
        pool.share(r)
    assert ei.value.errno == 22
