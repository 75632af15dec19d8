# SPDX-License-Identifier: MIT
"""Every object call of mempool.Pool: put/get of each kind, zero-copy and
read-only guarantees, pins, errors, reservations, figures."""
import gc
import pickle
import threading
import time

import numpy as np
import pandas as pd
import pytest

import mempool
from conftest import pins

DTYPES = ["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8", "?"]


def test_dref():
    r = mempool.DRef(0x1000, 0x2300000001)
    s = str(r)
    assert s == "0000000000001000:0000002300000001"
    assert mempool.DRef.parse(s) == r
    assert hash(r) == hash(mempool.DRef.parse(s))
    assert pickle.loads(pickle.dumps(r)) == r
    assert {r: 1}[mempool.DRef(0x1000, 0x2300000001)] == 1
    assert repr(r) == f"DRef('{s}')"
    assert (r.off, r.gen) == (0x1000, 0x2300000001)
    with pytest.raises(AttributeError):
        r.off = 3
    with pytest.raises(ValueError):
        mempool.DRef.parse("nope")


def test_bytes(pool):
    for data in [b"", b"hello", bytearray(b"ba"), memoryview(b"mv" * 1000)]:
        ref = pool.put(data)
        buf = pool.get(ref)
        assert isinstance(buf, mempool.Buffer)
        assert bytes(buf) == bytes(data) and len(buf) == len(data)
        assert buf.ref == ref and buf.type == mempool.TYPE_BYTES
    # non-contiguous buffers are gathered
    ref = pool.put(memoryview(b"abcdef")[::2])
    assert bytes(pool.get(ref)) == b"ace"
    assert "Buffer" in repr(pool.get(ref))


def test_readonly(pool):
    buf = pool.get(pool.put(b"abc"))
    m = memoryview(buf)
    assert m.readonly
    with pytest.raises(TypeError):
        m[0] = 1
    a = pool.get(pool.put(np.arange(4)))
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 9
    with pytest.raises(ValueError):
        a.flags.writeable = True
    with pytest.raises((BufferError, ValueError)):
        np.frombuffer(buf, dtype=np.uint8).setflags(write=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["C", "F"])
def test_arrays(pool, dtype, order):
    a = np.asarray(np.arange(24).reshape(2, 3, 4) % 7, dtype=dtype, order=order)
    b = pool.get(pool.put(a))
    assert b.dtype == a.dtype and b.shape == a.shape
    assert np.array_equal(a, b)
    assert b.flags.f_contiguous if order == "F" else b.flags.c_contiguous
    assert isinstance(b.base, mempool.Buffer)


def test_array_kinds(pool):
    for a in [np.array(3.5), np.zeros((0, 3)),
              np.arange(10)[::2], np.arange(5, dtype=">i4")]:
        b = pool.get(pool.put(a))
        assert np.array_equal(a, b) and b.shape == a.shape
    s = pool.get(pool.put(np.float32(2.5)))  # numpy scalars: 0-d arrays
    assert s.shape == () and s.dtype == np.float32 and s == 2.5
    # other fixed-size dtypes come back as void records of their size
    c = np.arange(4, dtype=np.complex128)
    b = pool.get(pool.put(c))
    assert b.dtype.itemsize == 16 and np.array_equal(b.view(np.complex128), c)
    with pytest.raises(ValueError):
        pool.put(np.zeros((1,) * 9))


def test_zero_copy(pool):
    a = np.random.default_rng(0).random(100_000)
    ref = pool.put(a)
    x, y = pool.get(ref), pool.get(ref)
    assert np.shares_memory(x, y)
    assert x.ctypes.data == y.ctypes.data
    assert pool.info(ref)["pins"] == 2
    with pool.view(ref) as raw:
        assert len(raw) == a.nbytes + 128
        assert raw.address + 128 == x.ctypes.data


def test_pins_back_to_zero(pool):
    ref = pool.put(np.arange(1000))
    arrs = [pool.get(ref) for _ in range(10)]
    views = [a[::2] for a in arrs]
    mv = memoryview(pool.get(pool.put(b"x" * 100)))
    tab = pool.get(pool.put({"a": np.arange(3), "s": ["x", "y", None]}))
    df = tab.to_pandas()
    assert pins(pool) == 12
    del arrs
    assert pins(pool) == 12  # the slices still use the memory
    del views, mv, tab
    assert pins(pool) == 1   # the DataFrame's columns do too
    del df
    assert pins(pool) == 0


def test_view_release(pool):
    ref = pool.put(b"abc" * 10)
    with pool.view(ref) as v:
        assert bytes(v[:3]) if hasattr(v, "__getitem__") else True
        m = memoryview(v)
        assert pool.info(ref)["pins"] == 1
    assert pool.info(ref)["pins"] == 1  # still exported
    m.release()
    assert pool.info(ref)["pins"] == 0 and v.released
    with pytest.raises(ValueError):
        memoryview(v)


def test_strings(pool):
    items = ["a", None, "", "é€", b"\x00raw"]
    s = pool.get(pool.put(items))
    assert isinstance(s, mempool.Strings) and len(s) == 5
    assert list(s) == [b"a", None, b"", "é€".encode(), b"\x00raw"]
    assert s[-1] == b"\x00raw" and s[1:3] == [None, b""]
    assert s.missing == 1
    assert pool.get(pool.put(("x", "y"))).to_list("utf-8") == ["x", "y"]
    assert pool.get(pool.put(np.array(["ab", "c"]))).to_list("utf-8") == \
        ["ab", "c"]
    assert pool.get(pool.put(np.array([b"ab", b"c"]))).to_list() == \
        [b"ab", b"c"]
    assert pool.get(pool.put(np.array(["x", None], dtype=object)))[1] is None
    with pytest.raises(TypeError):
        pool.put(["a", 3])
    with pytest.raises(IndexError):
        s[5]


def test_table_dict(pool):
    t = pool.get(pool.put({"i": np.arange(4), "f": np.ones(4, "f4"),
                           "s": ["a", "b", None, "d"]}))
    assert isinstance(t, mempool.Table) and len(t) == 3 and t.nrows == 4
    assert list(t) == ["i", "f", "s"]
    assert np.array_equal(t["i"], np.arange(4)) and not t["i"].flags.writeable
    assert t["s"][2] is None
    with pytest.raises(ValueError):
        pool.put({"a": np.arange(3), "b": np.arange(4)})


def test_dataframe(pool):
    df = pd.DataFrame({"x": np.arange(1000, dtype="i8"),
                       "y": np.linspace(0, 1, 1000),
                       "name": [f"n{i}" if i % 7 else None for i in range(1000)],
                       "ok": np.arange(1000) % 2 == 0})
    t = pool.get(pool.put(df))
    out = t.to_pandas()
    pd.testing.assert_frame_equal(out, df, check_dtype=False)
    assert out["x"].dtype == np.int64 and out["ok"].dtype == bool
    # numeric columns are the pool's memory
    assert np.shares_memory(out["y"].to_numpy(), t["y"])
    assert np.shares_memory(out["x"].to_numpy(), t["x"])
    idx = pd.DataFrame({"v": [1.0, 2.0]}, index=["a", "b"])
    pd.testing.assert_frame_equal(pool.get(pool.put(idx)).to_pandas(), idx)
    with pytest.raises(TypeError):
        pool.put(pd.DataFrame({"t": pd.date_range("2020", periods=3)}))


def test_delete_ref_unref_info(pool):
    ref = pool.put(b"abc")
    info = pool.info(ref)
    assert info["len"] == 3 and info["type_name"] == "bytes"
    assert info["owner"] == pool.worker_id and info["in_memory"]
    pool.delete(ref)
    with pytest.raises(mempool.NotFound) as e:
        pool.get(ref)
    assert e.value.errno == 2 and isinstance(e.value, OSError)
    with pytest.raises(mempool.NotFound):
        pool.delete(ref)
    rc = pool.put(b"counted", refcounted=True)
    pool.ref(rc)
    assert pool.info(rc)["refs"] == 2
    pool.unref(rc)
    pool.unref(rc)
    with pytest.raises(mempool.NotFound):
        pool.info(rc)
    with pytest.raises(mempool.Error) as e:
        pool.ref(pool.put(b"plain"))
    assert e.value.errno == 22


def test_delete_while_pinned(pool):
    a = np.arange(1000.0)
    ref = pool.put(a)
    b = pool.get(ref)
    pool.delete(ref)
    assert np.array_equal(a, b)  # still readable while pinned
    used = pool.stats()["pool"]["arena"]["used_bytes"]
    del b
    gc.collect()
    assert pool.stats()["pool"]["arena"]["used_bytes"] < used


def test_errors(name, tmp_path):
    with pytest.raises(mempool.NotFound):
        mempool.Pool(name, create=False)
    with pytest.raises(mempool.Error) as e:
        mempool.Pool("bad/name")
    assert e.value.errno == 22
    with mempool.Pool(name, arena_bytes=8 << 20, spill_dir=str(tmp_path)) as p:
        with pytest.raises(mempool.TooBig):
            p.put(b"x" * (16 << 20))
        keep = []  # pinned objects cannot be spilled to make room
        with pytest.raises(mempool.PoolFull):
            for _ in range(4):
                keep.append(p.get(p.put(b"x" * (3 << 20))))
        del keep
        gone = p.put(b"x")
        p.delete(gone)
        with pytest.raises(mempool.NotFound):
            p.get(gone)
        with pytest.raises(mempool.Error) as e:
            p.get(mempool.DRef(0, 0))
        assert e.value.errno == 22
        with pytest.raises(TypeError):
            p.get(42)
        with pytest.raises(TypeError):
            p.put(object())
    with pytest.raises(ValueError):
        p.get(mempool.DRef(0, 0))
    assert issubclass(mempool.Corrupt, mempool.Error)
    assert mempool.strerror(-2)


def test_reserve(pool):
    with pool.reserve(5) as res:
        res.buffer[:] = b"hello"
        with pytest.raises(mempool.NotFound):
            pool.get(res.ref)
    assert res.state == "published" and bytes(pool.get(res.ref)) == b"hello"
    with pytest.raises(ValueError):
        res.buffer
    with pytest.raises(RuntimeError):
        with pool.reserve(1 << 20) as res2:
            res2.buffer[:3] = b"abc"
            raise RuntimeError("boom")
    assert res2.state == "aborted"
    with pytest.raises(mempool.NotFound):
        pool.get(res2.ref)
    r3 = pool.reserve(10)
    ref3 = r3.ref
    del r3
    gc.collect()
    assert pool.stats()["pool"]["objects"]["reserved"] == 0
    with pytest.raises(mempool.NotFound):
        pool.get(ref3)


def test_empty(pool):
    with pool.empty((3, 4), "f4", order="F") as res:
        assert res.array.flags.writeable and res.array.flags.f_contiguous
        res.array[:] = np.arange(12, dtype="f4").reshape(3, 4)
        arr = res.array
    assert not arr.flags.writeable
    got = pool.get(res.ref)
    assert np.array_equal(got, np.arange(12, dtype="f4").reshape(3, 4))
    assert got.flags.f_contiguous and got.ctypes.data == arr.ctypes.data
    with pool.empty(5, np.complex64) as res:
        res.array[:] = 1j
    assert np.array_equal(pool.get(res.ref).view(np.complex64), [1j] * 5)
    with pytest.raises(KeyError):
        with pool.empty(4) as res:
            raise KeyError
    assert res.state == "aborted"


def test_pool_attributes(pool, name):
    assert pool.name == name and 1 <= pool.worker_id <= 64
    assert repr(pool).startswith(f"<mempool.Pool '{name}' worker=")
    assert pool.max_memsize == 0
    pool.max_memsize = 1 << 20
    assert pool.max_memsize == 1 << 20
    st = pool.stats()
    assert st["pool"]["name"] == name and st["schema"] >= 1
    pool.check()
    assert pool.reap() == 0
    assert pool.trim() >= 0
    with mempool.Pool(name, create=False) as other:
        assert other.worker_id != pool.worker_id
        assert bytes(other.get(pool.put(b"shared"))) == b"shared"
    assert other.closed and "closed" in repr(other)


def test_close_keeps_live_memory(name, tmp_path):
    p = mempool.Pool(name, arena_bytes=16 << 20, spill_dir=str(tmp_path))
    a = p.get(p.put(np.arange(10)))
    p.close()
    assert a.sum() == 45  # the mapping lives until the array goes
    with pytest.raises(ValueError):
        p.put(b"x")
    del a
    gc.collect()
    with mempool.Pool(name) as q:
        assert q.stats()["pool"]["workers"]["attached"] == 1


def test_get_timeout(pool):
    import threading
    res = pool.reserve(3)
    res.buffer[:] = b"abc"
    t = threading.Timer(0.1, res.publish)
    t.start()
    assert bytes(pool.get(res.ref, timeout=5)) == b"abc"
    t.join()
    gone = pool.put(b"x")
    pool.delete(gone)
    with pytest.raises(mempool.NotFound):
        pool.get(gone, timeout=0.05)


def test_names_with_nul_are_refused(pool, name):
    # A str with an embedded NUL used to be cut at the NUL by the C layer:
    # Pool("x\0y") opened pool "x", destroy("x\0y") destroyed it, a column
    # "éé\0x" became "éé". Python's own calls (open(), os.*) refuse them
    # with ValueError; so does mempool, before touching anything.
    with pytest.raises(ValueError):
        mempool.Pool(name + "\0other")
    with pytest.raises(ValueError):
        mempool.destroy(name + "\0other")
    assert pool.stats()["pool"]["name"] == name  # still there
    with pytest.raises(ValueError):
        pool.put({"\u00e9\u00e9\0x": np.arange(3)})
    if not mempool.HAVE_HANDOFF:
        return
    ref = pool.put(b"x")
    for bad in ("a\0b", b"a\0b"):
        with pytest.raises(ValueError):
            pool.names[bad] = ref
        with pytest.raises(ValueError):
            pool.names.wait(bad, timeout=0)
        with pytest.raises(ValueError):
            del pool.names[bad]
        with pytest.raises(ValueError):
            pool.channel(bad)
    assert list(pool.names) == []


@pytest.mark.parametrize("op", ["put", "get", "move_to_disk", "stats"])
def test_close_while_another_thread_calls(name, tmp_path, op):
    # pool.close() (the end of a with-block) while another thread is inside
    # a call that runs without the GIL (a put's copy, a get, a spill):
    # the handle was freed under that call (SIGSEGV). Now the call in
    # flight finishes, and the thread's next call raises ValueError.
    pool = mempool.Pool(name, arena_bytes=128 << 20, spill_dir=str(tmp_path))
    a = np.ones(8 << 20, dtype=np.uint8)
    ref = pool.put(a)

    def spill():
        r = pool.put(a)
        pool.move_to_disk(r)
        pool.delete(r)

    calls = {"put": lambda: pool.delete(pool.put(a)),
             "get": lambda: pool.get(ref),
             "move_to_disk": spill,
             "stats": pool.stats}
    ended, started = [], threading.Event()

    def loop():
        try:
            while True:
                calls[op]()
                started.set()
        except BaseException as e:  # noqa: B902 - reported to the test
            ended.append(e)
            started.set()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    started.wait(60)
    time.sleep(0.05)
    pool.close()
    t.join(60)
    assert not t.is_alive()
    assert isinstance(ended[0], ValueError), ended
    with mempool.Pool(name, create=False) as again:
        again.check()
