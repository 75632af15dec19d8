/* SPDX-License-Identifier: MIT */
/*
 * fuzz_params.h - what the fuzz targets and their seed generator
 * (fuzz_seeds.c) must agree on: the input formats and the parameters of the
 * pools they build.
 *
 * fuzz_dref (a byte program run against a live pool)
 *   input := op*
 *   op    := OPBYTE args
 *   OPBYTE: bits 0..3 opcode (FD_OP_*), bit 4 handle (two handles on the
 *           pool), bits 5..7 "extra" (flags of the op).
 *   Most ops take a DRef source: one selector byte (FD_SRC_* in its low 3
 *   bits) and the source's own bytes (see fuzz_dref.c).
 *
 * fuzz_attach (an arena image attached without CREATE)
 *   input := HEADER [PATCH*]
 *   HEADER: up to FA_HDR_BYTES bytes laid over offset 0 of a real image
 *           (shorter input: the rest of the real header stays).
 *   PATCH : region(1) offset(u32 le) len(1) bytes(len), applied to the
 *           real image's region (FA_REG_*) at that offset modulo the
 *           region's size. Reaches the slots, pin cells, object table,
 *           page descriptors, free-page bitmap and data.
 *
 * fuzz_spillfile (a spill/saved file mapped back)
 *   input := FLAGS(1) FILE
 *   FLAGS: FS_* below; FILE the file's bytes.
 */
#ifndef MEMPOOL_FUZZ_PARAMS_H
#define MEMPOOL_FUZZ_PARAMS_H

/* ---- fuzz_dref ---------------------------------------------------------- */
enum {
    FD_OP_GET = 0,      /* src; keep the view (released at the end) */
    FD_OP_RELEASE,      /* n: held view n (extra&1: on the other handle
                           first, extra&2: release a stale copy after) */
    FD_OP_INFO,         /* src */
    FD_OP_DELETE,       /* src */
    FD_OP_REF,          /* src */
    FD_OP_UNREF,        /* src */
    FD_OP_PUBLISH,      /* src */
    FD_OP_ABORT,        /* src */
    FD_OP_MOVE,         /* src; extra&1: get_file the returned file */
    FD_OP_COPY,         /* src; extra&1: get_file the returned file */
    FD_OP_RESERVE,      /* len(u16); extra: set flags */
    FD_OP_SET,          /* len(u16); extra: set flags */
    FD_OP_SAVE,         /* src; save_to_disk, get_file, release */
    FD_OP_GET_OBJ,      /* src; type = extra & 3 */
    FD_OP_ROUNDTRIP,    /* src; format, parse, compare */
    FD_OP_FORGED,       /* 48 bytes: a forged mempool_view to release */
    FD_NOPS
};
enum {
    FD_SRC_KNOWN = 0,   /* k: object k (pre-made first, then this input's) */
    FD_SRC_GEN,         /* k, u32: object k, generation xor u32 */
    FD_SRC_OFF,         /* k, i16: object k, offset + i16 */
    FD_SRC_RAW,         /* 16 bytes: off, gen (little-endian) */
    FD_SRC_TEXTMUT,     /* k, pos, char: object k as text, one char changed */
    FD_SRC_TEXT,        /* n, n bytes: text for mempool_dref_parse */
    FD_SRC_STALE,       /* k: a DRef of an object deleted earlier */
    FD_SRC_SPECIAL      /* k: edge cases (0, header, past the table, ...) */
};
/* The pre-made objects of fuzz_dref, in order (object index k). */
enum {
    FD_PRE_SMALL = 0,   /* 64 B, in memory */
    FD_PRE_LARGE,       /* 5000 B, a page run */
    FD_PRE_EMPTY,       /* 0 B */
    FD_PRE_REFCOUNTED,  /* 300 B, one reference held by handle 0 */
    FD_PRE_SPILLED,     /* 3000 B, moved to disk */
    FD_PRE_COPIED,      /* 1500 B, in memory with a clean file */
    FD_PRE_DESTROY,     /* 200 B, DESTROY_ON_EVICT */
    FD_PRE_ARRAY,       /* a MEMPOOL_TYPE_ARRAY of 100 doubles */
    FD_NPRE
};

/* ---- fuzz_attach -------------------------------------------------------- */
#define FA_ARENA_BYTES   (3ull << 20)  /* smallest arena with room for data:
                                          the pin cells alone take 2 MiB */
#define FA_MAX_OBJECTS   64u
#define FA_HDR_BYTES     4096u
enum {
    FA_REG_HEADER = 0, FA_REG_SLOTS, FA_REG_CELLS, FA_REG_TABLE,
    FA_REG_PAGES, FA_REG_BITMAP, FA_REG_DATA, FA_NREG
};

/* ---- fuzz_spillfile ----------------------------------------------------- */
#define FS_FIX_HCRC   0x01u  /* store the right header crc (bytes 60..63) */
#define FS_FIX_PCRC   0x02u  /* store the right payload crc (56..59) */
#define FS_VERIFY     0x04u  /* map with verify (payload crc checked) */
#define FS_IDENTITY   0x08u  /* expect the header's own uuid/idx/gen */
#define FS_FIX_SIZE   0x10u  /* pad/truncate the file to 4096 + len */
#define FS_PUBLIC     0x20u  /* also mempool_get_file() on a pool */
#define FS_KIND(f)    ((f) >> 6) /* 0 file, 1 symlink to it, 2 fifo, 3 dir */

#endif /* MEMPOOL_FUZZ_PARAMS_H */
