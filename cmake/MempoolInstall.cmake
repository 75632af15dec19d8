# MempoolInstall.cmake - what `cmake --install` puts where, by component
# (the Debian packages of MempoolPackaging.cmake are these components):
#   lib    libmempool.so.0*, LICENSE                     -> libmempool0
#   dev    headers, libmempool.so, libmempool.a, mempool.pc, CMake package,
#          man pages 3 and 7                             -> libmempool-dev
#   tools  mempool, mempool-top, mempool-bench, man 1    -> mempool-tools
include(CMakePackageConfigHelpers)

set(MEMPOOL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mempool)
set(MEMPOOL_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS mempool EXPORT mempoolTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib
                NAMELINK_COMPONENT dev)
install(FILES include/mempool/mempool.h
              ${MEMPOOL_GENERATED_INCLUDE}/mempool/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mempool COMPONENT dev)
install(FILES include/mempool.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT dev)
install(EXPORT mempoolTargets NAMESPACE mempool::
        DESTINATION ${MEMPOOL_CMAKE_DIR} COMPONENT dev)
if(MEMPOOL_BUILD_STATIC)
  install(TARGETS mempool_static EXPORT mempoolStaticTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
  install(EXPORT mempoolStaticTargets NAMESPACE mempool::
          DESTINATION ${MEMPOOL_CMAKE_DIR} COMPONENT dev)
endif()

configure_package_config_file(cmake/mempoolConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/mempoolConfig.cmake
  INSTALL_DESTINATION ${MEMPOOL_CMAKE_DIR})
# 0.x: a minor release may change the API, so only the same MAJOR.MINOR
# satisfies a request (SameMinorVersion); from 1.0 on, SameMajorVersion.
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/mempoolConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mempoolConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/mempoolConfigVersion.cmake
        DESTINATION ${MEMPOOL_CMAKE_DIR} COMPONENT dev)

# mempool.pc, relocatable: ${pcfiledir} up to the prefix.
file(RELATIVE_PATH MEMPOOL_PC_TO_PREFIX
     "${CMAKE_INSTALL_PREFIX}/${MEMPOOL_PC_DIR}" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" MEMPOOL_PC_TO_PREFIX "${MEMPOOL_PC_TO_PREFIX}")
configure_file(cmake/mempool.pc.in ${CMAKE_CURRENT_BINARY_DIR}/mempool.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mempool.pc
        DESTINATION ${MEMPOOL_PC_DIR} COMPONENT dev)

install(FILES LICENSE README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT lib)

# Programs find libmempool relative to themselves ($ORIGIN/../lib), so an
# install into any prefix runs without LD_LIBRARY_PATH. No RPATH when the
# library goes to a directory the linker searches anyway (/usr/lib/...).
file(RELATIVE_PATH MEMPOOL_BIN_TO_LIB "${CMAKE_INSTALL_FULL_BINDIR}"
     "${CMAKE_INSTALL_FULL_LIBDIR}")
list(FIND CMAKE_C_IMPLICIT_LINK_DIRECTORIES "${CMAKE_INSTALL_FULL_LIBDIR}"
     MEMPOOL_LIBDIR_IS_SYSTEM)
if(MEMPOOL_LIBDIR_IS_SYSTEM EQUAL -1)
  set(MEMPOOL_TOOLS_RPATH "$ORIGIN/${MEMPOOL_BIN_TO_LIB}")
else()
  set(MEMPOOL_TOOLS_RPATH "")
endif()
