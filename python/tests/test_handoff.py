# SPDX-License-Identifier: MIT
"""The handoff primitives from Python (when the C library has them):
get with a wait, names, give/take, channels, and pickle hops that survive
their producer and expire when never loaded."""
import gc
import multiprocessing as mp
import threading
import time

import numpy as np
import pytest

import mempool
from mempool import _mempool, _pickle
from conftest import pins

pytestmark = pytest.mark.skipif(not _mempool.HAVE_HANDOFF,
                                reason="libmempool without handoff")


def test_get_waits_for_publish(pool):
    res = pool.reserve(3)
    res.buffer[:] = b"abc"
    threading.Timer(0.1, res.publish).start()
    t = time.monotonic()
    assert bytes(pool.get(res.ref, timeout=10)) == b"abc"
    assert time.monotonic() - t < 5
    res2 = pool.reserve(1)
    with pytest.raises(TimeoutError):
        pool.get(res2.ref, timeout=0.05)
    res2.abort()
    with pytest.raises(mempool.NotFound):
        pool.get(res2.ref, timeout=1)


def test_names(pool):
    names = pool.names
    r1, r2 = pool.put(b"one"), pool.put(b"two", refcounted=True)
    names["a"] = r1
    names["b"] = r2
    assert names["a"] == r1 and set(names) == {"a", "b"} and len(names) == 2
    with pytest.raises(KeyError):
        names.bind("a", r2)
    names["a"] = r2  # replace
    assert names["a"] == r2
    pool.unref(r2)  # the names hold it now
    assert bytes(pool.get(names["b"])) == b"two"
    del names["a"], names["b"]
    with pytest.raises(KeyError):
        names["a"]
    with pytest.raises(mempool.NotFound):
        pool.get(r2)  # the last reference went with the last name
    threading.Timer(0.1, names.__setitem__, ("late", r1)).start()
    assert names.wait("late", timeout=10) == r1
    with pytest.raises(TimeoutError):
        names.wait("never", timeout=0.05)


def test_give_take(pool):
    ref = pool.put(b"in flight", refcounted=True)
    pool.give(ref, ttl=60)
    assert pool.info(ref)["refs"] >= 1
    pool.take(ref)
    with pytest.raises(mempool.NotFound):
        pool.take(ref)
    pool.unref(ref)
    with pytest.raises(mempool.NotFound):
        pool.info(ref)
    ref = pool.put(b"ttl", refcounted=True)
    with pytest.raises(ValueError):
        pool.give(ref, ttl=float("nan"))  # was: given, never expiring
    pool.give(ref, ttl=float("inf"))  # never expires, as None
    pool.take(ref)
    pool.unref(ref)
    ref = pool.put(b"expires", refcounted=True)
    pool.give(ref, ttl=0.05)
    time.sleep(0.2)
    pool.check()  # drops expired references
    with pytest.raises(mempool.NotFound):
        pool.get(ref)


def _consume(name, chan, out):
    p = mempool.Pool(name, create=False)
    got = []
    for ref in p.channel(chan):
        got.append(bytes(p.get(ref)))
        p.unref(ref)
    out.put(got)


def test_channel(pool, name):
    ch = pool.channel("jobs", capacity=4)
    assert "jobs" in repr(ch)
    out = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=_consume,
                                          args=(name, "jobs", out))
    proc.start()
    for i in range(10):
        r = pool.put(b"item%d" % i, refcounted=True)
        ch.send(r, timeout=30)  # our reference moves into the channel
        with pytest.raises(mempool.Error):
            pool.unref(r)
    deadline = time.monotonic() + 30
    while pool.stats()["pool"]["objects"]["used"] and \
            time.monotonic() < deadline:
        time.sleep(0.01)
    ch.destroy()
    assert out.get(timeout=30) == [b"item%d" % i for i in range(10)]
    proc.join(30)
    with pytest.raises(ValueError):
        ch.recv(timeout=0)
    with pool.channel("b", broadcast=True) as sub:
        r = pool.put(b"x")
        pool.channel("b", broadcast=True).send(r)
        assert sub.recv(timeout=5) == r
        with pytest.raises(TimeoutError):
            sub.recv(timeout=0.05)


def test_hop_expires_in_pool(pool):
    old = _pickle.HOP_TTL
    _pickle.HOP_TTL = 0.05
    try:
        data = mempool.dumps(np.zeros(1 << 17), pool)
    finally:
        _pickle.HOP_TTL = old
    time.sleep(0.2)
    pool.check()
    assert pool.stats()["pool"]["objects"]["used"] == 0
    with pytest.raises(mempool.NotFound):
        mempool.loads(data, pool)


def test_resend_without_copy(pool):
    a = np.arange(1 << 17, dtype="f8")
    mempool.install(pool)
    try:
        from multiprocessing.reduction import ForkingPickler
        b = ForkingPickler.loads(ForkingPickler.dumps(a))
        sets = pool.stats()["totals"]["sets"]
        c = ForkingPickler.loads(ForkingPickler.dumps(b))  # sent on
        assert pool.stats()["totals"]["sets"] == sets
        assert np.shares_memory(b, c) and np.array_equal(a, c)
    finally:
        mempool.uninstall()
    del b, c
    assert pins(pool) == 0
    assert pool.stats()["pool"]["objects"]["used"] == 0


def _blocked_in(call, holder):
    """Run call() in a thread; what it raised (or returned) lands in
    holder[0]. The thread is returned once it has started."""
    started = threading.Event()

    def run():
        started.set()
        try:
            holder.append(call())
        except BaseException as e:  # noqa: B902 - reported to the test
            holder.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait()
    return t


@pytest.mark.parametrize("op", ["recv", "send", "iter"])
def test_channel_closed_by_another_thread(pool, op):
    # A thread blocked in a channel call while another thread closes the
    # channel (the shutdown of a consumer thread): the blocked call ends
    # with ValueError, never a crash (the C handle was freed under the
    # waiter: SIGSEGV) and never a wait forever.
    ch = pool.channel("shut", capacity=1)
    if op == "send":
        ch.send(pool.put(b"fills the queue"))
    calls = {"recv": ch.recv,
             "send": lambda: ch.send(pool.put(b"x")),
             "iter": lambda: list(ch)}
    got = []
    t = _blocked_in(calls[op], got)
    time.sleep(0.3)  # most likely inside the wait by now; either way...
    ch.close()
    t.join(60)
    assert not t.is_alive()
    assert isinstance(got[0], ValueError) and "closed" in str(got[0])
    with pytest.raises(ValueError):
        ch.recv(timeout=0)
    if op == "send":  # the channel and its item stay: a new handle
        with pool.channel("shut") as again:
            assert bytes(pool.get(again.recv(timeout=5))) == b"fills the queue"


@pytest.mark.parametrize("op", ["names.wait", "get"])
def test_pool_closed_by_another_thread(name, tmp_path, op):
    # pool.close() while another thread waits on the pool forever: the
    # wait ends with ValueError (the pool is closed) instead of running on
    # a closed handle.
    pool = mempool.Pool(name, arena_bytes=32 << 20, spill_dir=str(tmp_path))
    res = pool.reserve(8)
    calls = {"names.wait": lambda: pool.names.wait("never", timeout=None),
             "get": lambda: pool.get(res.ref, timeout=1e9)}
    got = []
    t = _blocked_in(calls[op], got)
    time.sleep(0.3)
    pool.close()
    t.join(60)
    assert not t.is_alive()
    assert isinstance(got[0], ValueError) and "closed" in str(got[0])
    res.abort()


def _destroy_stopped(name, chan):
    # In a forked child: stop (SIGSTOP) inside mempool_chan_destroy() with
    # the pool's channel directory lock held (failpoint chan.destroying).
    import os
    os.environ["MEMPOOL_FAILPOINT"] = "chan.destroying=stop"
    p = mempool.Pool(name, create=False)
    p.channel(chan).destroy()
    os._exit(0)


def test_lock_waits_release_the_gil(pool, name):
    # A call that waits for a lock another process holds (here: channel
    # destroy behind a peer stopped inside its own destroy) used to keep
    # the GIL for the whole wait (up to 5 s, then EAGAIN): no other thread
    # of the process ran, not even the one that would let the peer go on.
    import os
    import signal
    pool.channel("held")
    mine = pool.channel("mine")
    pid = os.fork()
    if pid == 0:
        try:
            _destroy_stopped(name, "held")
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        pytest.skip("libmempool built without failpoints")
    got, calling = [], threading.Event()

    def destroy():
        calling.set()
        try:
            mine.destroy()
            got.append("destroyed")
        except BaseException as e:  # noqa: B902 - reported to the test
            got.append(e)

    t = threading.Thread(target=destroy)
    t.start()
    calling.wait()
    time.sleep(0.2)  # let the thread reach the lock (if it holds the GIL,
    os.kill(pid, signal.SIGCONT)  # this runs only after its wait failed)
    t.join(60)
    os.waitpid(pid, 0)
    assert got == ["destroyed"]


@pytest.mark.parametrize("op", ["names.wait", "give"])
def test_pool_closed_by_its_timeout(name, op):
    # The timeout (or ttl) is converted with float(), which runs Python
    # code - here it closes the pool, as another thread may meanwhile.
    # The call had taken the handle before the conversion and went on with
    # it: names.wait on the freed MpyConn (incref and a second dealloc of
    # a freed object), give on a closed handle. Now the pool is closed
    # when the call looks, and it raises ValueError.
    pool = mempool.Pool(name, arena_bytes=32 << 20)
    ref = pool.put(b"in flight", refcounted=True)

    class Closing:
        def __float__(self):
            pool.close()
            return 0.05

    calls = {"names.wait": lambda: pool.names.wait("never", Closing()),
             "give": lambda: pool.give(ref, ttl=Closing())}
    with pytest.raises(ValueError, match="closed"):
        calls[op]()
    assert pool.closed
    with mempool.Pool(name, create=False) as again:
        again.check()
