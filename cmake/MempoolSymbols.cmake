# MempoolSymbols.cmake - the list of public functions, read from the public
# header: every declaration that starts with MEMPOOL_API. The linker version
# script (gen_version_script.cmake) and the export check
# (tests/check_exports.cmake) both use it, so a function added to the header
# is exported, versioned and checked with no list to edit by hand.
#
# mempool_public_functions(OUT HEADER): names, sorted, in OUT.
function(mempool_public_functions out header)
  file(READ "${header}" text)
  # Drop comments first: they mention MEMPOOL_API and call names.
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" text "${text}")
  string(REGEX MATCHALL "MEMPOOL_API[^(;#]*[ *]mempool_[a-z0-9_]+[ ]*\\("
         decls "${text}")
  set(names "")
  foreach(d IN LISTS decls)
    string(REGEX MATCH "mempool_[a-z0-9_]+[ ]*\\($" n "${d}")
    string(REGEX REPLACE "[ ]*\\($" "" n "${n}")
    list(APPEND names "${n}")
  endforeach()
  list(REMOVE_DUPLICATES names)
  list(SORT names)
  set(${out} "${names}" PARENT_SCOPE)
endfunction()
