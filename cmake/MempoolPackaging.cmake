# MempoolPackaging.cmake - Debian packages with CPack, one per install
# component (MempoolInstall.cmake):
#   cd build && cpack -G DEB
#   -> libmempool0_<v>_<arch>.deb      the shared library, LICENSE
#      libmempool-dev_<v>_<arch>.deb   headers, .so link, .a, mempool.pc,
#                                      CMake package, man pages 3 and 7
#      mempool-tools_<v>_<arch>.deb    mempool, mempool-top, mempool-bench
#      python3-mempool_<v>_<arch>.deb  when MEMPOOL_BUILD_PYTHON is on
# Configure with -DCMAKE_INSTALL_PREFIX=/usr for packages (the CI does).
set(CPACK_PACKAGE_NAME mempool)
set(CPACK_PACKAGE_VENDOR "the mempool authors")
set(CPACK_PACKAGE_CONTACT "the mempool authors <mempool@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: each package's synopsis is the first
# line of its CPACK_DEBIAN_<COMPONENT>_DESCRIPTION below.
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_PACKAGE_INSTALL_DIRECTORY mempool)
set(CPACK_COMPONENTS_ALL lib dev tools)
if(MEMPOOL_BUILD_PYTHON)
  list(APPEND CPACK_COMPONENTS_ALL python)
endif()

# libmempool0: dpkg-shlibdeps finds libc6, liburing2, libcjson1; a shlibs
# file and the ldconfig trigger are generated.
set(CPACK_DEBIAN_LIB_PACKAGE_NAME libmempool0)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIB_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libmempool-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# pkg-config --cflags needs the Requires.private modules' .pc files.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "liburing-dev, libcjson-dev")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME mempool-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
# The tools need libc6 and libmempool0 only (dpkg-shlibdeps would not find
# the libmempool0 being built beside them on CMake < 3.20).
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "libc6 (>= 2.34)")

set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME python3-mempool)
set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION python)
set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS "python3, python3-numpy")
# mempool.dask (the Dask integration) needs these; the rest does not.
set(CPACK_DEBIAN_PYTHON_PACKAGE_SUGGESTS "python3-dask, python3-distributed")

# Per package: the first line is the synopsis, the rest the long text.
set(CPACK_DEBIAN_LIB_DESCRIPTION "shared memory object pool for processes on one host (library)
mempool lets processes on one Linux host share immutable objects through
one POSIX shared-memory arena: zero-copy gets, crash-safe reference
counting, spilling to disk. This package has the shared library.")
set(CPACK_DEBIAN_DEV_DESCRIPTION "shared memory object pool for processes on one host (development)
Headers (<mempool/mempool.h>), the static library, pkg-config and CMake
package files, and the section 3 and 7 manual pages of mempool.")
set(CPACK_DEBIAN_TOOLS_DESCRIPTION "shared memory object pool for processes on one host (tools)
mempool (pool administration, fsck, demo), mempool-top (live view,
--json, --prometheus) and mempool-bench.")
set(CPACK_DEBIAN_PYTHON_DESCRIPTION "shared memory object pool for processes on one host (Python 3)
The Python binding of mempool: put and get numpy arrays, strings and
tables zero-copy between processes.")
if(Python3_VERSION_MAJOR AND Python3_VERSION_MINOR)
  math(EXPR next_minor "${Python3_VERSION_MINOR} + 1")
  set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS "python3 (>= ${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}), python3 (<< ${Python3_VERSION_MAJOR}.${next_minor}), python3-numpy")
endif()

include(CPack)
cpack_add_component(lib DISPLAY_NAME "libmempool0")
cpack_add_component(dev DISPLAY_NAME "libmempool-dev" DEPENDS lib)
cpack_add_component(tools DISPLAY_NAME "mempool-tools" DEPENDS lib)
if(MEMPOOL_BUILD_PYTHON)
  cpack_add_component(python DISPLAY_NAME "python3-mempool" DEPENDS lib)
endif()
