/* SPDX-License-Identifier: MIT */
/*
 * version.c - the library's version, from the generated <mempool/version.h>
 * (CMake's project(VERSION) is the only place it is written), so a program
 * can compare the library it runs against with the header it was built with.
 */
#include <mempool/mempool.h>

const char *mempool_version(void)
{
    return MEMPOOL_VERSION_STRING;
}

unsigned mempool_version_number(void)
{
    return MEMPOOL_VERSION_NUMBER;
}
