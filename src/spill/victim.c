/* SPDX-License-Identifier: MIT */
/*
 * victim.c - which resident objects a spill pass frees, at a cost that does
 * not grow with the pool (issue 11, target 4).
 *
 * Every choice keeps only the best candidates seen, in a max-heap on the
 * policy key (the entry's recency stamp for LRU, its complement for MRU):
 * the smallest set, best first, whose bytes cover the need, plus `keep`
 * more for the pinned ones the pass will skip. A candidate that cannot
 * enter costs one comparison; nothing sorts the pool.
 *
 * Small pools (at most MP_VICTIM_EXACT entries ever used) are scanned
 * whole, so the order is exact, as MemPool.jl's scenarios require.
 *
 * Larger pools are sampled, as Redis's eviction pool does: a pass probes
 * random entries until it has MP_VICTIM_SAMPLES candidates (at most
 * MP_VICTIM_PROBES probes), adds the best candidates the handle kept from
 * its previous pass (re-read: their stamps are current), and spills at most
 * one in MP_VICTIM_TAKE_DIV of its fresh candidates, best first. Bound:
 * the k fresh candidates are uniform draws (with replacement) from the C
 * candidates of the pool, and adding the kept ones can only improve the
 * choice, so the j-th victim of a pass is among the r*C least recently used
 * unless fewer than j of k draws fell there: P = P[Binomial(k, r) < j].
 * For the first victim of a full sample (k = 64): P(outside the oldest 5 %)
 * <= 0.95^64 = 3.7 %, 10 %: 0.12 %, 25 %: 1e-8; for the 8th and last,
 * outside the oldest half: < 1e-10. `mempool-bench --section scale` reports
 * the ranks it actually gets. A pass that finds fewer than SAMPLES / 4
 * candidates in its probes (they are rarer than 1 in 64 entries: most
 * objects spilled, or another owner's) scans every entry instead: exact
 * again, O(entries) but without a sort.
 *
 * Nothing here is shared: the kept candidates are indices in the handle,
 * re-validated like any probe, so there is nothing to repair after a
 * crash, and readers never write anything for it beyond their stamp.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "spillstate.h"
#include "victim.h"

/* ---- the best candidates: a max-heap on (key, idx) --------------------- */

static bool after(const mp_victim *a, const mp_victim *b)
{
    return a->key != b->key ? a->key > b->key : a->idx > b->idx;
}

static void sift_up(mp_victim *v, size_t i)
{
    while (i && after(&v[i], &v[(i - 1) / 2])) {
        mp_victim t = v[i];
        v[i] = v[(i - 1) / 2];
        v[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void sift_down(mp_victim *v, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && after(&v[l], &v[m]))
            m = l;
        if (r < n && after(&v[r], &v[m]))
            m = r;
        if (m == i)
            return;
        mp_victim t = v[i];
        v[i] = v[m];
        v[m] = t;
        i = m;
    }
}

static void pop_worst(mp_victims *vs)
{
    vs->total -= vs->v[0].len;
    vs->v[0] = vs->v[--vs->n];
    sift_down(vs->v, vs->n, 0);
    vs->dropped++;
}

static bool listed(const mp_victims *vs, uint32_t idx)
{
    for (size_t i = 0; i < vs->n; i++)
        if (vs->v[i].idx == idx)
            return true;
    return false;
}

/* Let @p c in if it is among the best; 0, or -ENOMEM. */
static int offer(mp_victims *vs, const mp_victim *c)
{
    if (vs->n >= vs->keep && vs->total >= vs->need && !after(&vs->v[0], c)) {
        vs->dropped++;             /* enough better ones already */
        return 0;
    }
    if (!vs->exact && listed(vs, c->idx))
        return 0;                  /* drawn twice */
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? 2 * vs->cap : 32;
        mp_victim *nv = realloc(vs->v, cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        vs->v = nv;
        vs->cap = cap;
    }
    vs->v[vs->n] = *c;
    sift_up(vs->v, vs->n++);
    vs->total += c->len;
    while (vs->n > vs->keep && vs->total - vs->v[0].len >= vs->need)
        pop_worst(vs);
    return 0;
}

/* ---- candidates ----------------------------------------------------------- */

/* Entry @p idx if it is a resident, unpinned-at-a-glance object of @p owner
 * (-1 any): 1 offered, 0 not a candidate, -ENOMEM. */
static int consider(mempool *p, int owner, bool mru, uint32_t idx,
                    mp_victims *vs)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w = atomic_load(&e->word), stamp;
    mp_victim c;

    if (MP_W_ST(w) != MP_ST_LIVE || MP_W_RC(w) ||
        (MP_W_FL(w) & (MP_F_WRITING | MP_F_NOMEM)) || MP_LD(e->len) == 0 ||
        (owner >= 0 && MP_LD(e->owner) != owner + 1))
        return 0;
    stamp = atomic_load_explicit(&e->stamp, memory_order_relaxed);
    c.key = mru ? ~stamp : stamp;
    c.len = MP_LD(e->len);
    c.idx = idx;
    c.gen = MP_W_GEN(w);
    c.destroy = MP_LD(e->setflags) & MEMPOOL_PUT_DESTROY_ON_EVICT;
    return offer(vs, &c) ? -ENOMEM : 1;
}

static int scan_all(mempool *p, int owner, bool mru, uint32_t hwm,
                    mp_victims *vs)
{
    for (uint32_t i = 0; i < hwm; i++)
        if (consider(p, owner, mru, i, vs) < 0)
            return -ENOMEM;
    return 0;
}

/* xorshift64*: this thread's draws (quality is ample for sampling). */
static _Thread_local uint64_t rnd_state;

static uint32_t rnd_below(uint32_t n)
{
    uint64_t x = rnd_state;
    if (!x) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&rnd_state ^
             (uint64_t)ts.tv_sec) | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rnd_state = x;
    return (uint32_t)(((x * UINT64_C(0x2545F4914F6CDD1D)) >> 32) * n >> 32);
}

/* The kept candidates, then random probes until SAMPLES fresh ones. */
static int sample(mempool *p, int owner, bool mru, uint32_t hwm,
                  mp_victims *vs)
{
    struct mp_victim_keep *k = &p->spill->vkeep;
    uint32_t free_ = 0;
    int rc;

    if (atomic_compare_exchange_strong(&k->busy, &free_, 1)) {
        for (uint32_t i = 0; i < k->n && i < 16; i++)
            if (k->idx[i] < hwm && consider(p, owner, mru, k->idx[i], vs) < 0)
                break;
        k->n = 0;
        atomic_store(&k->busy, 0);
    }
    for (unsigned i = 0;
         i < MP_VICTIM_PROBES && vs->fresh < MP_VICTIM_SAMPLES; i++) {
        if ((rc = consider(p, owner, mru, rnd_below(hwm), vs)) < 0)
            return rc;
        vs->fresh += (size_t)rc;
    }
    return 0;
}

static int by_key(const void *a, const void *b)
{
    const mp_victim *x = a, *y = b;
    return after(x, y) ? 1 : after(y, x) ? -1 : 0;
}

int mempool__victims_pick(mempool *p, int owner, uint64_t need, size_t keep,
                          mp_victims *vs)
{
    uint64_t hwm = atomic_load(&p->h->hwm);
    bool mru = p->h->policy == MEMPOOL_POLICY_MRU;
    int rc = 0;

    if (hwm > p->ntab)
        hwm = p->ntab;
    *vs = (mp_victims){ .need = need, .keep = keep ? keep : 1 };
    if (hwm > MP_VICTIM_EXACT)
        rc = sample(p, owner, mru, (uint32_t)hwm, vs);
    if (rc == 0 && (hwm <= MP_VICTIM_EXACT ||
                    vs->fresh < MP_VICTIM_SAMPLES / 4)) {
        vs->n = vs->dropped = 0;   /* too few drawn: every entry instead */
        vs->total = 0;
        vs->exact = true;
        rc = scan_all(p, owner, mru, (uint32_t)hwm, vs);
    }
    if (rc) {
        free(vs->v);
        *vs = (mp_victims){ 0 };
        return rc;
    }
    if (vs->n > 1)   /* qsort's pointer must be valid even for n == 0 */
        qsort(vs->v, vs->n, sizeof(*vs->v), by_key);
    vs->take = vs->exact ? vs->n : vs->fresh / MP_VICTIM_TAKE_DIV;
    if (!vs->take)
        vs->take = 1;
    return 0;
}

void mempool__victims_done(mempool *p, mp_victims *vs, size_t used)
{
    struct mp_victim_keep *k = &p->spill->vkeep;
    uint32_t free_ = 0;

    if (!vs->exact && used < vs->n &&
        atomic_compare_exchange_strong(&k->busy, &free_, 1)) {
        k->n = 0;
        for (size_t i = used; i < vs->n && k->n < 16; i++)
            k->idx[k->n++] = vs->v[i].idx;
        atomic_store(&k->busy, 0);
    }
    free(vs->v);
    *vs = (mp_victims){ 0 };
}
