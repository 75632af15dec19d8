/* SPDX-License-Identifier: MIT */
/*
 * mempool.h - compatibility include for code written before the header moved.
 *
 * The public header is <mempool/mempool.h>: a name of its own directory, so it
 * never collides with other projects' (or the kernel's) "mempool.h". This file
 * keeps `#include <mempool.h>` working for existing programs for one release.
 */
#include "mempool/mempool.h"
