# check_exports.cmake - libmempool.so exports exactly the functions the
# public header declares, each at version MEMPOOL_0.1, and nothing else
# (no internal mempool__* helper, no symbol of a dependency), and its SONAME
# is libmempool.so.<major>.
#   cmake -DLIB=libmempool.so -DHEADER=mempool.h -DNM=nm -DREADELF=readelf
#         -DMAJOR=0 -P check_exports.cmake
include("${CMAKE_CURRENT_LIST_DIR}/../cmake/MempoolSymbols.cmake")
mempool_public_functions(want "${HEADER}")

execute_process(COMMAND "${NM}" -D --defined-only "${LIB}"
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -D ${LIB} failed (${rc})")
endif()
string(REPLACE "\n" ";" lines "${out}")
set(have "")
set(bad "")
foreach(l IN LISTS lines)
  if(l STREQUAL "")
    continue()
  endif()
  # "<addr> <type> <name>[@@VERSION]"
  if(NOT l MATCHES "^[0-9a-f]+ ([A-Za-z]) ([^@]+)(@@?(.*))?$")
    list(APPEND bad "unparsed: ${l}")
    continue()
  endif()
  set(type "${CMAKE_MATCH_1}")
  set(name "${CMAKE_MATCH_2}")
  set(ver "${CMAKE_MATCH_4}")
  if(type STREQUAL "A" AND (name STREQUAL ver OR ver STREQUAL ""))
    continue()                    # the version node itself
  endif()
  if(NOT ver STREQUAL "MEMPOOL_0.1")
    list(APPEND bad "${name}: version '${ver}', want MEMPOOL_0.1")
  endif()
  list(APPEND have "${name}")
endforeach()
list(SORT have)

set(missing ${want})
list(REMOVE_ITEM missing ${have})
set(extra ${have})
list(REMOVE_ITEM extra ${want})
foreach(f IN LISTS missing)
  list(APPEND bad "declared in the header but not exported: ${f}")
endforeach()
foreach(f IN LISTS extra)
  list(APPEND bad "exported but not declared in the header: ${f}")
endforeach()

execute_process(COMMAND "${READELF}" -d "${LIB}" OUTPUT_VARIABLE dyn)
if(NOT dyn MATCHES "Library soname: \\[libmempool\\.so\\.${MAJOR}\\]")
  list(APPEND bad "SONAME is not libmempool.so.${MAJOR}")
endif()

list(LENGTH want nwant)
list(LENGTH have nhave)
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "check_exports: ${nhave} exported, ${nwant} declared:\n  ${bad}")
endif()
message(STATUS "check_exports: ${nhave} functions, all declared, all at MEMPOOL_0.1")
