"""Two hosts simulated on one machine: two network namespaces joined by a
veth pair (addresses only inside them), each with a private /dev/shm (its
own mount namespace and tmpfs) and its own pool of the same name; one
scheduler; workers on both sides. Same-namespace transfers must go by DRef,
cross-namespace ones by bytes over TCP, and every result must be exact."""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

pytest.importorskip("distributed")

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture
def netns():
    """(ns_a, ns_b, ip_a, ip_b), or a skip saying why not."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"):
        pytest.skip("two-host Dask test needs root, iproute2 and unshare")
    tag = uuid.uuid4().hex[:6]
    ns_a, ns_b = f"mpda{tag}", f"mpdb{tag}"
    va, vb = f"mpva{tag}", f"mpvb{tag}"
    octet = int(tag[:2], 16) % 200 + 20
    ip_a, ip_b = f"10.213.{octet}.1", f"10.213.{octet}.2"
    steps = [
        ("ip", "netns", "add", ns_a), ("ip", "netns", "add", ns_b),
        ("ip", "link", "add", va, "type", "veth", "peer", "name", vb),
        ("ip", "link", "set", va, "netns", ns_a),
        ("ip", "link", "set", vb, "netns", ns_b),
        ("ip", "-n", ns_a, "addr", "add", ip_a + "/24", "dev", va),
        ("ip", "-n", ns_b, "addr", "add", ip_b + "/24", "dev", vb),
        ("ip", "-n", ns_a, "link", "set", va, "up"),
        ("ip", "-n", ns_b, "link", "set", vb, "up"),
        ("ip", "-n", ns_a, "link", "set", "lo", "up"),
        ("ip", "-n", ns_b, "link", "set", "lo", "up"),
    ]
    try:
        for st in steps:
            r = _run(*st)
            if r.returncode:
                pytest.skip(f"cannot create network namespaces: {' '.join(st)}:"
                            f" {r.stderr.strip()}")
        yield ns_a, ns_b, ip_a, ip_b
    finally:
        _run("ip", "netns", "del", ns_a)
        _run("ip", "netns", "del", ns_b)


def _in_host(ns, argv):
    """argv in network namespace @ns with a private, fresh /dev/shm."""
    script = 'mount -t tmpfs -o size=1536m tmpfs /dev/shm && exec "$@"'
    return ["ip", "netns", "exec", ns, "unshare", "--mount",
            "--propagation", "private", "sh", "-c", script, "sh", *argv]


def test_two_hosts(netns, tmp_path):
    ns_a, ns_b, ip_a, ip_b = netns
    name = "dask-hosts"                    # the same name on both hosts
    out, ready = str(tmp_path / "out.json"), str(tmp_path / "ready")
    spill_a, spill_b = tmp_path / "spill-a", tmp_path / "spill-b"
    spill_a.mkdir()
    spill_b.mkdir()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    host_a = subprocess.Popen(
        _in_host(ns_a, [sys.executable, os.path.join(HERE, "dask_netns_host.py"),
                        ip_a, ip_b, name, str(spill_a), out, ready]),
        env=env, stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "host-a.log", "w"))
    host_b = None
    try:
        end = time.monotonic() + 180
        while not os.path.exists(ready) or not open(ready).read():
            assert host_a.poll() is None, open(tmp_path / "host-a.log").read()
            assert time.monotonic() < end, "scheduler did not start"
            time.sleep(0.2)
        addr = open(ready).read()
        host_b = subprocess.Popen(
            _in_host(ns_b, [sys.executable, "-m", "distributed.cli.dask_worker",
                            addr, "--no-nanny", "--nthreads", "1", "--host", ip_b,
                            "--no-dashboard", "--memory-limit", "2GiB",
                            "--preload", "mempool.dask", "--mempool-pool", name,
                            "--mempool-spill-dir", str(spill_b),
                            "--mempool-arena-bytes", "512MiB"]),
            env=env, stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "host-b.log", "w"), start_new_session=True)
        host_a.wait(timeout=600)
    finally:
        for p in (host_a, host_b):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, 9) if p is host_b else p.kill()
                p.wait()
    log = open(tmp_path / "host-a.log").read()[-3000:]
    res = json.load(open(out))
    assert "sums" in res, log
    want1 = float(np.random.default_rng(1).random(8 << 20).sum())
    want2 = float(np.random.default_rng(2).random(8 << 20).sum())
    assert res["sums"] == [want1, want1, want2]
    assert res["client_exact"]
    (a0, a1), (b0,) = res["a_side"], res["b_side"]
    w = res["workers"]
    # the same pool name, two pools: identities differ (uuid, shm device)
    assert w[a0]["identity"] == w[a1]["identity"]
    assert w[a0]["identity"][0] == w[b0]["identity"][0] == name
    assert w[a0]["identity"] != w[b0]["identity"]
    # inside host A by DRef (the first A worker to the other); between the
    # hosts by bytes over TCP, both ways (to B0, and B0's array back to A0)
    side_a = [w[a0]["counters"], w[a1]["counters"]]
    assert sum(c["dref_sent"] for c in side_a) == 1
    assert sum(c["dref_received"] for c in side_a) == 1
    assert sum(c["bytes_sent"] for c in side_a) >= 1
    assert w[b0]["counters"]["dref_sent"] == 0
    assert w[b0]["counters"]["dref_received"] == 0
    assert w[b0]["counters"]["bytes_sent"] >= 1
    # every released object is gone from both pools
    assert all(v["objects"] == 0 for v in res["after_release"].values()), res
