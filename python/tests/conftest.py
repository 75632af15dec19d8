# SPDX-License-Identifier: MIT
"""Fixtures: a fresh small pool per test (unique name, spill dir under the
test's tmp_path), destroyed afterwards. The suite must run against the
freshly built module: MEMPOOL_PYTHON_BUILD (set by tools/quickstart and
ctest) names the directory the imported module has to come from."""
import gc
import os
import uuid

import pytest

import mempool

_want = os.environ.get("MEMPOOL_PYTHON_BUILD")
if _want:
    here = os.path.realpath(os.path.dirname(mempool.__file__))
    assert here.startswith(os.path.realpath(_want)), (
        f"testing {here}, not the build in {_want}")


def pool_name(tag="t"):
    return f"pytest-{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def name():
    n = pool_name()
    yield n
    try:
        mempool.destroy(n)
    except mempool.NotFound:
        pass


@pytest.fixture
def pool(name, tmp_path):
    p = mempool.Pool(name, arena_bytes=128 << 20, spill_dir=str(tmp_path))
    yield p
    gc.collect()
    p.close()


def pins(pool):
    gc.collect()
    return pool.stats()["pool"]["objects"]["pins"]
