/* SPDX-License-Identifier: MIT */
/* codec.c - placeholder until the codec layer lands: nothing registered. */
#include "internal.h"

void mempool__codecs_free(mempool *p)
{
    (void)p;
}
