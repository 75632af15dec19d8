/* SPDX-License-Identifier: MIT */
/*
 * arena.c - creating, attaching to, closing and destroying a pool's arena.
 *
 * A pool is the shm object /dev/shm/mempool.<name>. Creation never exposes
 * a half-built arena: the creator builds it under a private name (with '#',
 * which pool names cannot contain), holding the init lock, and link()s it to
 * the public name only when the header and tables are complete. Of racing
 * creators exactly one link() succeeds; the others attach to the winner.
 * After linking, the creator marks the pool READY. Only the metadata pages
 * are reserved (posix_fallocate()) at creation; data pages get memory when
 * the allocator first hands them out (backing.c), so a full /dev/shm fails
 * that allocation with -ENOSPC, never with SIGBUS later, and an arena
 * larger than the free space of /dev/shm is refused at creation. Attachers that find
 * the pool still building wait on the init lock; if the creator died they
 * finish the reservation themselves.
 *
 * Attaching reads the header with pread() (no mapping yet), checks magic,
 * format word, size and the layout recomputed from the header's own
 * parameters, and maps only an arena that passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "failpoint.h"
#include "internal.h"
#include "wcache.h"

int mempool__name_ok(const char *name)
{
    size_t n;
    if (!name || name[0] == '\0' || name[0] == '.')
        return -EINVAL;
    for (n = 0; name[n]; n++) {
        char c = name[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok || n >= MEMPOOL_NAME_MAX)
            return -EINVAL;
    }
    return 0;
}

int mempool__shm_path(const char *name, char *buf, size_t len)
{
    int rc = mempool__name_ok(name);
    if (rc)
        return rc;
    if ((size_t)snprintf(buf, len, MP_SHM_DIR "/mempool.%s", name) >= len)
        return -EINVAL;
    return 0;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

uint64_t mempool__format_word(void)
{
    const uint64_t parts[] = {
        sizeof(mp_header), sizeof(mp_slot), sizeof(mp_entry), sizeof(mp_page),
        MP_CELL_BW, MP_WORKERS, sizeof(pthread_mutex_t), MP_PAGE, MP_NCLASS,
        sizeof(void *), offsetof(mp_header, alloc_lock), 0x0102030405060708ull,
        sizeof(mp_hand), sizeof(mp_box), sizeof(mp_name), sizeof(mp_chan),
        MP_CHANS, MP_BOX_BW, sizeof(mp_wcache), MP_WC_MAX, MP_CELL_OVF_DIV,
        offsetof(mp_header, max_refs), offsetof(mp_slot, sets),
        2,  /* the slot locks' home: 2 = the lock file (lockfile.c) */
    };
    uint64_t h = 1469598103934665603ull;            /* FNV-1a over parts */
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        h ^= parts[i];
        h *= 1099511628211ull;
    }
    return ((uint64_t)MP_FORMAT_VERSION << 48) | (h & 0xffffffffffffull);
}

static uint64_t clamp_u64(uint64_t x, uint64_t lo, uint64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* The handoff regions from @p off on (sizes scale with the arena: 1 GiB
 * gets 16384 ring slots and 4096 names, small arenas 1024 and 256).
 * Boxes: 8 per bucket for 0.8 of them, the rest overflow (box.c). */
static uint64_t handoff_layout(uint64_t arena, uint64_t off, mp_header *out)
{
    uint64_t nring = clamp_u64(arena >> 16, 1024, 65536);
    uint64_t nnames = clamp_u64(arena >> 18, 256, 4096);
    uint64_t nb = (2 * nring + nnames + 7) / 8;
    out->nring = (uint32_t)nring;
    out->nnames = (uint32_t)nnames;
    out->nbox = (uint32_t)(nb * 10);
    out->nchans = MP_CHANS;
    out->hand_off = off;
    out->boxw_off = off + align_up(sizeof(mp_hand), MP_PAGE);
    out->boxes_off = align_up(out->boxw_off + out->nbox * 8ull, MP_ALIGN);
    out->names_off = align_up(out->boxes_off + out->nbox * sizeof(mp_box),
                              MP_ALIGN);
    out->chans_off = align_up(out->names_off + nnames * sizeof(mp_name),
                              MP_ALIGN);
    out->ring_off = align_up(out->chans_off + MP_CHANS * sizeof(mp_chan),
                             MP_ALIGN);
    return MP_DIRECT_OFF(out->ring_off, nring) +
           (uint64_t)MP_WORKERS * MP_DIRECT_K(arena) * sizeof(mp_direct);
}

static uint64_t pow2_up(uint64_t x)
{
    uint64_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

/* Each worker's pin/ref table for @p max_refs (0: the default, from the
 * object table's size): home cells, a power of two. 0 if out of range. */
static uint64_t refs_of(uint64_t max_refs, uint64_t max_objects)
{
    if (max_refs == 0)
        return clamp_u64(pow2_up(max_objects) / 4, 4096, 65536);
    if (max_refs > MEMPOOL_MAX_REFS)
        return 0;
    return pow2_up(max_refs < MP_REFS_MIN ? MP_REFS_MIN : max_refs);
}

/* Cells of one worker's table: home buckets, then 1/8 more in overflow. */
static uint64_t cells_per(uint64_t refs)
{
    return refs + refs / MP_CELL_OVF_DIV;
}

/* The most data pages that fit in @p arena after the page descriptors
 * (from @p pages_off) and the bitmap, the data starting on a multiple of
 * @p align; their offsets in @p bitmap_off and @p data_off. 0 if none.
 *
 * The data region starts on a 2 MiB chunk boundary (MP_CHUNK) where the
 * arena can spare the gap (under a chunk, never written, never backed):
 * then no huge page mixes metadata and data, and a new pool's first data
 * chunk - backed whole at creation with the metadata's (create(),
 * mempool__alloc_init) - is 2 MiB of data however large the metadata is.
 * Before this (format 10) the data began wherever the metadata ended, so
 * a new pool's first 1 MiB set found 0 - 2 MiB of its block backed at
 * creation, and paid for the rest as the metadata grew. */
static uint64_t data_fit(uint64_t arena, uint64_t pages_off, uint64_t align,
                         uint64_t *bitmap_off, uint64_t *data_off)
{
    uint64_t npages = (arena - pages_off) / (MP_PAGE + sizeof(mp_page) + 1);
    for (; npages > 0; npages--) {
        *bitmap_off = align_up(pages_off + npages * sizeof(mp_page),
                               MP_ALIGN);
        *data_off = align_up(*bitmap_off + (npages + 63) / 64 * 8, align);
        if (*data_off + npages * MP_PAGE <= arena)
            break;
    }
    return npages;
}

int mempool__layout(uint64_t arena, uint64_t max_objects, uint64_t max_refs,
                    mp_header *out)
{
    uint64_t off, npages, bitmap_off, data_off, na, ba, da;

    if (arena < MP_MIN_ARENA || arena > MP_MAX_ARENA ||
        arena % MP_PAGE)
        return -EINVAL;
    if (max_objects == 0)
        max_objects = arena / MP_PAGE < 1024 ? 1024 : arena / MP_PAGE;
    if (max_objects > MP_MAX_OBJECTS || !(max_refs = refs_of(max_refs,
                                                             max_objects)))
        return -EINVAL;
    out->slots_off = MP_PAGE;
    off = out->slots_off + (uint64_t)MP_WORKERS * sizeof(mp_slot);
    out->cells_off = off;
    off += (uint64_t)MP_WORKERS * cells_per(max_refs) * sizeof(uint64_t);
    if (off >= arena)
        return -EINVAL;
    out->wcache_off = off;
    off += (uint64_t)MP_WORKERS * sizeof(mp_wcache);
    off = handoff_layout(arena, align_up(off, MP_PAGE), out);
    out->table_off = align_up(off, MP_PAGE);
    off = out->table_off + max_objects * sizeof(mp_entry);
    out->pages_off = align_up(off, MP_ALIGN);
    if (out->pages_off + 4 * MP_PAGE > arena)
        return -EINVAL;                 /* table leaves no room for data */
    npages = data_fit(arena, out->pages_off, MP_PAGE, &bitmap_off, &data_off);
    if (npages < 1)
        return -EINVAL;
    /* Data from a 2 MiB boundary when that costs at most an eighth of it. */
    na = data_fit(arena, out->pages_off, MP_CHUNK, &ba, &da);
    if (na >= npages - npages / 8) {
        npages = na;
        bitmap_off = ba;
        data_off = da;
    }
    out->bitmap_off = bitmap_off;
    out->data_off = data_off;
    out->npages = npages;
    out->arena_bytes = arena;
    out->max_objects = max_objects;
    out->max_refs = max_refs;
    return 0;
}

/* The narrow view's pointers and copies of the validated header @p h. */
static void bind_core(mp_core *c, const mp_header *h)
{
    c->slots = (mp_slot *)(c->base + h->slots_off);
    c->cells = (_Atomic uint64_t *)(c->base + h->cells_off);
    c->wcs = (mp_wcache *)(c->base + h->wcache_off);
    c->tab = (mp_entry *)(c->base + h->table_off);
    c->pages = (mp_page *)(c->base + h->pages_off);
    c->bitmap = (_Atomic uint64_t *)(c->base + h->bitmap_off);
    c->ntab = h->max_objects;
    c->data_off = h->data_off;
    c->npages = h->npages;
    c->tag = (uint64_t)h->pool_tag << 32;
    /* the cell table geometry (pin.c); max_refs was validated: a power of
     * two, MP_REFS_MIN .. MEMPOOL_MAX_REFS */
    c->cell_per = (uint32_t)cells_per(h->max_refs);
    c->cell_mask = (uint32_t)(h->max_refs / MP_CELL_BW - 1);
    c->ovf_base = (uint32_t)h->max_refs;
    c->ovf_mask =
        (uint32_t)(h->max_refs / MP_CELL_OVF_DIV / MP_CELL_BW - 1);
    c->ovf_shift = 32u - (uint32_t)__builtin_ctzll(c->ovf_mask + 1ull);
}

void mempool__bind(mempool *p)
{
    const mp_header *h = &p->hv;
    bind_core(&p->core, h);
    p->hand = (mp_hand *)(p->base + h->hand_off);
    p->boxw = (_Atomic uint64_t *)(p->base + h->boxw_off);
    p->boxes = (mp_box *)(p->base + h->boxes_off);
    p->names = (mp_name *)(p->base + h->names_off);
    p->chans = (mp_chan *)(p->base + h->chans_off);
    p->ring = (_Atomic uint64_t *)(p->base + h->ring_off);
    p->direct = (mp_direct *)(p->base +
                              MP_DIRECT_OFF(h->ring_off, h->nring));
    p->nbox = h->nbox;
    p->nnames = h->nnames;
    p->nring = h->nring;
    p->ndirect = MP_DIRECT_K(h->arena_bytes);
}

/* ---- locks on the init byte ------------------------------------------- */

static int init_lock(int fd, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
                        .l_start = MP_LOCK_INIT, .l_len = 1 };
    int rc;
    do {
        rc = fcntl(fd, F_OFD_SETLK, &fl);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

/* Take the init lock of a linked pool, waiting at most
 * MEMPOOL_PEER_WAIT_MS. Its holder is mostly a creator between link and
 * READY (well under a millisecond) or an attacher finishing for a dead
 * one; but anyone who may open the pool, a reader of a 0644 pool too, can
 * hold a lock on the byte for as long as they like, and a waiting
 * F_OFD_SETLKW then hung the attach for ever (check_review12 init_wait).
 * Record locks have no timed wait: poll, sleeping 50 us doubling to 10 ms
 * (a few hundred polls over the bound, no spinning). */
static int init_lock_wait(int fd, short type)
{
    uint64_t end = mempool__now_ns() + MEMPOOL_PEER_WAIT_MS * 1000000ull;
    long ns = 50000;
    int rc;
    while ((rc = init_lock(fd, type)) == -EAGAIN || rc == -EACCES) {
        if (mempool__now_ns() >= end)
            return -EAGAIN;
        nanosleep(&(struct timespec){ 0, ns }, NULL);
        if (ns < 10000000)
            ns *= 2;
    }
    return rc;
}

static int read_header(int fd, mp_header *h)
{
    ssize_t n = pread(fd, h, sizeof(*h), 0);
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(*h) ? 0 : MEMPOOL_ECORRUPT;
}

static void set_init_state(int fd, uint32_t state, int32_t err)
{
    /* Callers hold the init lock; readers use pread under that lock too. */
    (void)!pwrite(fd, &err, sizeof(err), offsetof(mp_header, init_err));
    (void)!pwrite(fd, &state, sizeof(state), offsetof(mp_header, init_state));
}

/* Make the new pool's spill directory (spill/spilldir.c, through
 * p->spill_ops) before the pool is READY, so no attacher ever finds it
 * missing. Only the pool's owner makes it; a failure is not fatal: the
 * pool then refuses to spill. */
static void make_dir(mempool *p, int fd, const mp_header *h)
{
    struct stat st;
    bool made = false;
    uint32_t fl = h->dir_flags;
    if (!p->spill_ops || !p->spill_ops->make_dir ||
        fstat(fd, &st) < 0 || st.st_uid != geteuid() ||
        !memchr(h->spill_dir, '\0', sizeof(h->spill_dir)) ||
        !memchr(h->name, '\0', sizeof(h->name)))
        return;
    if (p->spill_ops->make_dir(h->spill_dir, h->name, h->uuid,
                               st.st_mode & 0777, st.st_gid, &made) == 0 &&
        made) {
        fl |= MP_DIR_MADE_BASE;
        (void)!pwrite(fd, &fl, sizeof(fl), offsetof(mp_header, dir_flags));
    }
}

/* Mark the pool READY. Its data pages stay holes: the allocator gives
 * them memory when it first hands them out (backing.c), so a full tmpfs
 * fails that allocation (-ENOSPC) and opening stays fast; space_ok()
 * refused an arena larger than the free space of the file system. */
static int reserve_data(int fd, const mp_header *h)
{
    (void)h;
    set_init_state(fd, MP_INIT_READY, 0);
    return 0;
}

/* The pool is still being built: wait for its creator, or finish for it. */
static int wait_ready(mempool *p, int fd)
{
    mp_header h;
    int rc = init_lock_wait(fd, F_RDLCK);
    if (rc)
        return rc;
    rc = read_header(fd, &h);
    init_lock(fd, F_UNLCK);
    if (rc)
        return rc;
    if (h.init_state == MP_INIT_READY)
        return 0;
    if (h.init_state == MP_INIT_FAILED)
        return h.init_err < 0 ? h.init_err : MEMPOOL_ENOTREADY;
    /* Creator died after linking: take the lock exclusively and finish. */
    if ((rc = init_lock_wait(fd, F_WRLCK)))
        return rc;
    rc = read_header(fd, &h);
    if (!rc && h.init_state == MP_INIT_BUILDING) {
        make_dir(p, fd, &h);
        rc = reserve_data(fd, &h);
    }
    else if (!rc && h.init_state == MP_INIT_FAILED)
        rc = h.init_err < 0 ? h.init_err : MEMPOOL_ENOTREADY;
    init_lock(fd, F_UNLCK);
    return rc;
}

static int init_mutex(pthread_mutex_t *m);

/* The kind (robust, shared) of the arena's mutexes, found once: -1 if a
 * mutex of that kind cannot be made. */
int mempool__mutex_kind(void)
{
    static _Atomic int kind = -2;
    int k = atomic_load_explicit(&kind, memory_order_relaxed);
    if (k == -2) {
        pthread_mutex_t ref;
        k = -1;
        if (init_mutex(&ref) == 0) {
            k = ref.__data.__kind;
            pthread_mutex_destroy(&ref);
        }
        atomic_store_explicit(&kind, k, memory_order_relaxed);
    }
    return k;
}

/* The allocator mutex must be of the kind we create (robust, shared): a
 * damaged kind can make the C library abort or block. (The caches' locks
 * are checked before each use, wcache.c.) */
static bool mutex_kind_ok(const pthread_mutex_t *m)
{
    int kind = mempool__mutex_kind();
    return kind >= 0 && m->__data.__kind == kind;
}

/* Check a header read from an existing object of @p size bytes. */
static int validate_header(const mp_header *h, uint64_t size)
{
    mp_header chk;
    if (h->magic != MP_MAGIC)
        return MEMPOOL_ECORRUPT;
    if (!mutex_kind_ok(&h->alloc_lock))
        return MEMPOOL_ECORRUPT;
    if (h->format != mempool__format_word())
        return MEMPOOL_EFORMAT;
    if (h->arena_bytes != size || h->pool_tag == 0)
        return MEMPOOL_ECORRUPT;
    if (mempool__layout(h->arena_bytes, h->max_objects, h->max_refs, &chk) ||
        chk.max_refs != h->max_refs)
        return MEMPOOL_ECORRUPT;
    if (chk.slots_off != h->slots_off || chk.cells_off != h->cells_off ||
        chk.wcache_off != h->wcache_off ||
        chk.table_off != h->table_off || chk.pages_off != h->pages_off ||
        chk.bitmap_off != h->bitmap_off || chk.data_off != h->data_off ||
        chk.npages != h->npages || chk.hand_off != h->hand_off ||
        chk.boxw_off != h->boxw_off || chk.boxes_off != h->boxes_off ||
        chk.names_off != h->names_off || chk.chans_off != h->chans_off ||
        chk.ring_off != h->ring_off || chk.nbox != h->nbox ||
        chk.nnames != h->nnames || chk.nring != h->nring ||
        chk.nchans != h->nchans)
        return MEMPOOL_ECORRUPT;
    return 0;
}

/* Map the object at a 2 MiB-aligned address (reserve 2 MiB more address
 * space, map over its aligned part, give back the rest): a huge page of
 * the object (backing.c) is then mapped with one page-table entry in
 * every process. Without the reservation, an ordinary mapping. */
static void *map_aligned(int fd, uint64_t size, int prot)
{
    uint8_t *r = mmap(NULL, size + MP_CHUNK, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint8_t *a, *m;
    if (r == MAP_FAILED)
        return mmap(NULL, size, prot, MAP_SHARED, fd, 0);
    a = (uint8_t *)(((uintptr_t)r + MP_CHUNK - 1) & ~(uintptr_t)(MP_CHUNK - 1));
    m = mmap(a, size, prot, MAP_SHARED | MAP_FIXED, fd, 0);
    if (m == MAP_FAILED) {
        munmap(r, size + MP_CHUNK);
        return MAP_FAILED;
    }
    if (a > r)
        munmap(r, (size_t)(a - r));
    if (r + MP_CHUNK > a)
        munmap(a + size, (size_t)(r + MP_CHUNK - a));
    return m;
}

static int map_arena(mp_core *c, int fd, uint64_t size, bool readonly)
{
    int prot = readonly ? PROT_READ : PROT_READ | PROT_WRITE;
    void *m = map_aligned(fd, size, prot);
    if (m == MAP_FAILED)
        return -errno;
    c->fd = fd;
    c->base = m;
    c->size = size;
    c->h = m;
    return 0;
}

/* May this process attach to an object owned by @p uid? Its own, root's,
 * or anyone's when asked (MEMPOOL_OPEN_ANY_OWNER); observers only read. */
static bool owner_ok(const mempool *p, uid_t uid)
{
    return uid == geteuid() || uid == 0 || p->any_owner || p->observer;
}

int mempool__shm_open(const char *path, int flags, struct stat *st)
{
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                        O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? MEMPOOL_ECORRUPT : -errno;
    if (fstat(fd, st) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return MEMPOOL_ECORRUPT;      /* a FIFO, device, ... is no pool */
    }
    return fd;
}

static int attach(mempool *p, const char *path)
{
    struct stat st;
    mp_header h;
    int rc, fd = mempool__shm_open(path, O_RDWR, &st);
    if (fd == -EACCES && p->observer) {
        fd = mempool__shm_open(path, O_RDONLY, &st);
        p->readonly = true;           /* may read: observe through PROT_READ */
    }
    if (fd < 0)
        return fd;
    if (!owner_ok(p, st.st_uid)) {
        rc = -EPERM;                  /* squatted name: see owner_ok() */
        goto fail;
    }
    p->owner_uid = st.st_uid;
    p->owner_gid = st.st_gid;
    p->pool_mode = st.st_mode & 0777;
    if ((uint64_t)st.st_size < sizeof(h)) {
        rc = MEMPOOL_ECORRUPT;
        goto fail;
    }
    if ((rc = read_header(fd, &h)))
        goto fail;
    if (h.magic != MP_MAGIC) {
        rc = MEMPOOL_ECORRUPT;
        goto fail;
    }
    if (h.format != mempool__format_word()) {
        rc = MEMPOOL_EFORMAT;
        goto fail;
    }
    if (h.init_state != MP_INIT_READY &&
        (rc = p->observer ? MEMPOOL_ENOTREADY : wait_ready(p, fd)))
        goto fail;                    /* an observer never finishes a build */
    if ((rc = read_header(fd, &h)) ||
        (rc = validate_header(&h, (uint64_t)st.st_size)))
        goto fail;
    if ((rc = map_arena(&p->core, fd, (uint64_t)st.st_size, p->readonly)))
        goto fail;
    p->hv = h;                        /* what mempool__bind() reads */
    MP_FP(attach_checked);
    return 0;
fail:
    close(fd);
    return rc;
}

/* The absolute spill directory "<spill_dir>/<name>" fixed at creation. */
static int spill_dir_of(const char *dir, const char *name, char *out)
{
    char cwd[MP_PATH_MAX];
    int n;
    if (!dir || !*dir)
        dir = ".mempool";
    if (dir[0] == '/')
        n = snprintf(out, MP_PATH_MAX, "%s/%s", dir, name);
    else if (getcwd(cwd, sizeof(cwd)))
        n = snprintf(out, MP_PATH_MAX, "%s/%s/%s", strcmp(cwd, "/") ? cwd : "",
                     dir, name);
    else
        return -errno;
    return n < 0 || n >= MP_PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Fill the template header for a new pool. */
static int new_header(const char *name, const mempool_options *o,
                      mp_header *h)
{
    struct timespec ts;
    uint64_t arena = align_up(o->arena_bytes, MP_PAGE);
    int rc;

    memset(h, 0, sizeof(*h));
    if ((rc = mempool__layout(arena, o->max_objects, o->max_refs, h)))
        return rc;
    if (getrandom(h->uuid, sizeof(h->uuid), 0) != sizeof(h->uuid))
        return -EAGAIN;
    h->pool_tag = (uint32_t)(h->uuid[0] >> 32) | 1u;
    h->magic = MP_MAGIC;
    h->format = mempool__format_word();
    h->mode = o->mode;
    h->policy = o->policy;
    h->default_memsize = o->max_memsize;
    h->high_pct = 85;
    h->low_pct = 75;
    if ((rc = spill_dir_of(o->spill_dir, name, h->spill_dir)))
        return rc;
    h->init_state = MP_INIT_BUILDING;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    snprintf(h->name, sizeof(h->name), "%s", name);
    return 0;
}

static int init_mutex(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc)
        return -rc;
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!rc)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!rc)
        rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -rc;
}

/* Build the arena in the mapped private object; with @p reserve, give
 * every data page memory first (MEMPOOL_OPEN_RESERVE: huge pages where
 * allowed), else they stay holes until first used (backing.c). Only then
 * are the pages flagged backed (alloc_init), and the object is not yet
 * linked: a creator killed in here leaves only a build file to sweep. */
static int build(mempool *p, const mp_header *tmpl, bool reserve)
{
    mp_header *h = p->h;
    int rc;

    memcpy(h, tmpl, sizeof(*h));
    p->hv = *tmpl;                    /* what mempool__bind() reads */
    if ((rc = init_mutex(&h->alloc_lock)))
        return rc;
    mempool__bind(p);
    for (int s = 0; s < MP_WORKERS; s++)
        if ((rc = init_mutex(&p->wcs[s].lock)))
            return rc;
    if (reserve && (rc = mempool__back_all(&p->core, p->huge)))
        return rc;
    mempool__alloc_init(p, !reserve);
    return 0;
}

static int space_ok(uint64_t arena)
{
    struct statvfs vfs;
    if (statvfs(MP_SHM_DIR, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < arena)
        return -ENOSPC;
    return 0;
}

static void unlink_if_ours(const char *path, int fd)
{
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
        unlink(path);
}

/* A creator locks its build file before sizing it: a sized file whose
 * lock is free belongs to a dead creator. An empty one may be a live
 * creator's between open and lock: leave it. Only our own regular files:
 * root never sweeps what another user made. */
static int sweep_build(int dir, const char *entry, const char *rest,
                       void *arg)
{
    struct stat st;
    int fd = openat(dir, entry, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    (void)rest;
    (void)arg;
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_uid == geteuid() && st.st_size > 0 &&
        init_lock(fd, F_WRLCK) == 0)
        unlinkat(dir, entry, 0);
    close(fd);
    return 0;
}

/* Remove private build files of @p name whose creator died before linking
 * them (its init lock is free). */
static void sweep_builds(const char *name)
{
    char prefix[MEMPOOL_NAME_MAX + 32];
    snprintf(prefix, sizeof(prefix), "mempool.%s#init.", name);
    (void)mempool__shm_each(prefix, sweep_build, NULL);
}

/* The end of the metadata (the bitmap's last page): the gap after it, up
 * to data_off, is never written, so never backed either. */
static uint64_t meta_end(const mp_header *h)
{
    return align_up(h->bitmap_off + (h->npages + 63) / 64 * 8, MP_PAGE);
}

/* What creation backs with huge pages: the metadata's whole chunks, and
 * the first data chunk where the data starts on a chunk boundary. */
static uint64_t huge_end(const mp_header *h)
{
    if (h->data_off % MP_CHUNK || h->npages < MP_CHUNK / MP_PAGE)
        return h->data_off;
    return h->data_off + MP_CHUNK;
}

/* Create under a private name, link into place, reserve, mark READY. */
static int create(mempool *p, const char *path, const char *name,
                  const mempool_options *o)
{
    char tmp[sizeof(MP_SHM_DIR) + MEMPOOL_NAME_MAX + 64];
    mp_header tmpl;
    bool locked = false;
    int rc, fd;

    sweep_builds(name);
    mempool__lock_sweep(name);
    if ((rc = new_header(name, o, &tmpl)) || (rc = space_ok(tmpl.arena_bytes)))
        return rc;
    snprintf(tmp, sizeof(tmp), "%s#init.%d.%08x", path, (int)getpid(),
             (unsigned)tmpl.uuid[1]);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    /* The init lock before the pool's mode: once others may open the
     * file, a reader's lock on the init byte would keep a waiting
     * F_WRLCK out for ever (check_review11 create_window); while the file
     * is 0600 and new (O_EXCL) nobody else holds one. */
    if (init_lock(fd, F_WRLCK) ||
        ftruncate(fd, (off_t)tmpl.arena_bytes) < 0 ||
        fchmod(fd, o->mode) < 0 || (MP_FP(create_moded), false)) {
        rc = errno ? -errno : -EIO;
        goto fail_tmp;
    }
    /* The slot locks' file, before the link: every attacher finds it. */
    if ((rc = mempool__lock_create(name, tmpl.uuid, o->mode)))
        goto fail_tmp;
    locked = true;
    p->owner_uid = geteuid();
    p->owner_gid = getegid();
    p->pool_mode = o->mode;
    if ((rc = map_arena(&p->core, fd, tmpl.arena_bytes, p->readonly)))
        goto fail_tmp;
    /* Metadata pages are written now: reserve them before touching them,
     * its whole 2 MiB chunks as huge pages where allowed (backing.c):
     * formatting the table then faults a few times instead of thousands,
     * and so does every process that reads it. The first data chunk joins
     * that one collapse (one drain of the CPUs' page lists, not two), so
     * a new pool's first 2 MiB of data are backed before its first set
     * (mempool__alloc_init marks them so). */
    if (p->huge)
        mempool__back_meta(fd, p->base, huge_end(&tmpl));
    if ((rc = -posix_fallocate(fd, 0, (off_t)meta_end(&tmpl))))
        goto fail_map;
    if ((rc = build(p, &tmpl, o->flags & MEMPOOL_OPEN_RESERVE)))
        goto fail_map;
    MP_FP(create_built);
    if (link(tmp, path) < 0) {
        rc = -errno;
        goto fail_map;
    }
    unlink(tmp);
    MP_FP(create_linked);
    make_dir(p, fd, p->h);
    if ((rc = reserve_data(fd, &tmpl))) {
        unlink_if_ours(path, fd);
        mempool__lock_unlink(name, tmpl.uuid);
        init_lock(fd, F_UNLCK);
        goto fail_unmapped;
    }
    init_lock(fd, F_UNLCK);
    return 0;
fail_map:
    munmap(p->base, p->size);
fail_tmp:
    if (locked)
        mempool__lock_unlink(name, tmpl.uuid);
    unlink(tmp);
    close(fd);
    return rc;
fail_unmapped:
    munmap(p->base, p->size);
    close(fd);
    return rc;
}

/* Attach, or create when allowed; racing creators end up on one pool. */
int mempool__arena_open(mempool *p, const char *path, const char *name,
                      const mempool_options *o, bool *created)
{
    bool create_ok = o->flags & MEMPOOL_OPEN_CREATE;
    bool excl = create_ok && (o->flags & MEMPOOL_OPEN_EXCL);
    int rc = -ENOENT;

    for (int attempt = 0; attempt < 8; attempt++) {
        if (!excl) {
            rc = attach(p, path);
            if (rc != -ENOENT || !create_ok)
                return rc;
        }
        rc = create(p, path, name, o);
        *created = rc == 0;
        if (rc != -EEXIST || excl)
            return rc;
    }
    return rc;
}
