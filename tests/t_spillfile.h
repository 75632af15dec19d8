/* SPDX-License-Identifier: MIT */
/*
 * t_spillfile.h - helpers of the white-box spill file suites
 * (check_spillfile, check_spill_verify, check_crc32c, check_io,
 * check_io_prealloc): a scratch directory
 * per test, deterministic payloads, a file written through an I/O engine
 * and mapped back, a flipped byte. Files get entry 3, generation 4, type 5.
 */
#ifndef T_SPILLFILE_H
#define T_SPILLFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* mkdtemp "<root>/t-XXXXXX" into @p dir and open it (*dfd). */
void t_sf_dir_make(const char *root, char *dir, size_t len, int *dfd);
/* Close *dfd and remove @p dir's tree. */
void t_sf_dir_drop(const char *dir, int *dfd);
/* @p len deterministic bytes (xorshift of @p seed); free() them. */
uint8_t *t_sf_pattern(size_t len, uint64_t seed);
/* Write @p name in @p dfd through an engine of @p mode (MP_IO_*), pool
 * @p uuid. @return the request's result. */
int t_sf_write(int dfd, int mode, const char *name, const uint8_t *buf,
               uint64_t len, const uint64_t uuid[2]);
/* Map @p name (entry 3, generation 4 of @p uuid); on success its length
 * must be @p len and, with @p verify, its bytes @p want's. @return the
 * map's result. */
int t_sf_map(int dfd, const char *name, const uint64_t uuid[2], bool verify,
             const uint8_t *want, uint64_t len);
/* Entries of directory @p dfd (not "." and ".."), and in *tmps how many
 * of them end in ".tmp". */
int t_sf_dir_entries(int dfd, int *tmps);
/* Flip bits of file byte @p off (xor 0x5a). */
void t_sf_flip(int dfd, const char *name, uint64_t off);
/* For each of the @p n payload offsets @p offs of file @p name (holding
 * @p want, @p len bytes): flipped, a verifying map is MEMPOOL_ECORRUPT and
 * a non-verifying one maps; put back, it verifies again. */
void t_sf_flips_caught(int dfd, const char *name, const uint64_t uuid[2],
                       const uint8_t *want, uint64_t len,
                       const uint64_t *offs, unsigned n);

struct mempool;
/* Open pool @p name (64 MiB arena, spill files under @p spill_dir, no
 * spiller thread); @p create: create it exclusively. */
struct mempool *t_sf_pool_open(const char *name, const char *spill_dir,
                               bool create);

#endif /* T_SPILLFILE_H */
