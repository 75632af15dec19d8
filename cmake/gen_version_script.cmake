# gen_version_script.cmake - write the linker version script of libmempool
# from the public header (cmake -DHEADER=... -DOUT=... -P this).
#
# One version node, MEMPOOL_0.1, lists every function the header declares
# with MEMPOOL_API (deprecated aliases included: programs built against the
# old names keep linking); everything else is local. A later release that
# adds functions adds a node MEMPOOL_0.2 { ... } MEMPOOL_0.1; here, naming
# the new functions, so binaries record which interface they need.
include("${CMAKE_CURRENT_LIST_DIR}/MempoolSymbols.cmake")
mempool_public_functions(names "${HEADER}")
list(LENGTH names n)
if(n LESS 10)
  message(FATAL_ERROR "${HEADER}: found only ${n} MEMPOOL_API functions")
endif()
set(body "/* Generated from ${HEADER} by cmake/gen_version_script.cmake. */\n")
string(APPEND body "MEMPOOL_0.1 {\n  global:\n")
foreach(f IN LISTS names)
  string(APPEND body "    ${f};\n")
endforeach()
string(APPEND body "  local:\n    *;\n};\n")
file(WRITE "${OUT}" "${body}")
