# SPDX-License-Identifier: MIT
"""Build the _mempool extension for `pip install ./python`.

The extension is compiled together with the C library sources of this same
tree (the list is read from ../CMakeLists.txt's MEMPOOL_SOURCES), so the
module always speaks the arena format of the checkout it comes from and
needs no libmempool.so at run time. Offline and without build isolation:

    apt-get install python3-dev python3-pip python3-setuptools \
        python3-numpy liburing-dev libcjson-dev
    /usr/bin/python3 -m pip install --no-build-isolation ./python
    # Debian's system pip also wants --break-system-packages (or use a venv
    # with --system-site-packages, or --target/--prefix)
"""
import os
import re

import numpy
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.relpath(os.path.join(HERE, ".."), HERE)


def library_sources():
    with open(os.path.join(HERE, "..", "CMakeLists.txt")) as f:
        text = f.read()
    block = re.search(r"set\(MEMPOOL_SOURCES(.*?)\)", text, re.S).group(1)
    return [os.path.join(TOP, s) for s in block.split()]


def generated_include():
    """Make <mempool/version.h> from its .in template as CMake's
    configure_file(@ONLY) does; returns the include directory."""
    with open(os.path.join(HERE, "..", "CMakeLists.txt")) as f:
        version = re.search(r"project\(mempool VERSION (\d+)\.(\d+)\.(\d+)",
                            f.read()).groups()
    tmpl = os.path.join(HERE, "..", "include", "mempool", "version.h.in")
    out_dir = os.path.join("build", "generated")
    if not os.path.exists(tmpl):
        return out_dir
    with open(tmpl) as f:
        text = f.read()
    for key, val in zip(("MAJOR", "MINOR", "PATCH"), version):
        text = text.replace(f"@PROJECT_VERSION_{key}@", val)
    os.makedirs(os.path.join(HERE, out_dir, "mempool"), exist_ok=True)
    with open(os.path.join(HERE, out_dir, "mempool", "version.h"), "w") as f:
        f.write(text)
    return out_dir


lib = library_sources()
internal = sorted({os.path.dirname(s) for s in lib} | {os.path.join(TOP, "src")})
ext_sources = sorted(os.path.join("src", f)
                     for f in os.listdir(os.path.join(HERE, "src"))
                     if f.endswith(".c"))

setup(ext_modules=[Extension(
    "mempool._mempool",
    sources=ext_sources + lib,
    include_dirs=[generated_include(), os.path.join(TOP, "include"),
                  numpy.get_include(),
                  *internal],
    define_macros=[("_GNU_SOURCE", None)],
    libraries=["uring", "cjson", "pthread"],
    extra_compile_args=["-std=gnu11", "-fvisibility=hidden",
                        "-Wno-missing-field-initializers"],
)])
