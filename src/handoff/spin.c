/* SPDX-License-Identifier: MIT */
/*
 * spin.c - the adaptive, bounded spin before a handoff futex sleep and
 * the run words it decides by (spin.h has the design and its bounds).
 */
#include <sched.h>
#include <stddef.h>
#include <time.h>
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define MP_RSEQ_CPU 1
#endif
#endif

#include "failpoint.h"
#include "handoff.h"
#include "keeper.h"
#include "sleepers.h"
#include "spin.h"
#include "yield_off.h"

/* This thread's lead (spin.h): its last send or bind since its last
 * spin decision, and whether that woke a sleeper. */
static _Thread_local struct {
    uint32_t key;
    bool on, woke;
} lead;

/* The run word this thread wrote last and what it wrote: a send or a
 * receive then costs no load of the run words' line (other workers'
 * sleeps write it) unless the CPU changed. */
static _Thread_local struct {
    _Atomic uint64_t *w;
    uint64_t v;
} pub;

static void publish(_Atomic uint64_t *w, uint64_t v)
{
    /* Relaxed: a hint read by spinners, ordered with nothing. */
    atomic_store_explicit(w, v, memory_order_relaxed);
    pub.w = w;
    pub.v = v;
}

static _Atomic uint64_t *run_word(mempool *p, uint64_t slot1)
{
    return &p->hand->run[slot1 - 1];
}

/* This thread's CPU, or < 0. The kernel keeps it in the thread's rseq
 * area, which glibc (2.35+) registers at __rseq_offset from the thread
 * pointer: one load here, where sched_getcpu() is a call through the PLT
 * into libc that reads the same word (glibc's own fallback below when
 * the area is not registered). It lies on the wake-up path (run_awake()
 * after every handoff sleep): there, cold after the switch, the call
 * chain cost 70-100 ns under load, the load a few. */
static inline int cpu_now(void)
{
#ifdef MP_RSEQ_CPU
    if (__rseq_size) {
        int cpu;
        __asm__ volatile("movl %%fs:(%1), %0"
                         : "=r"(cpu)
                         : "r"(__rseq_offset +
                               (ptrdiff_t)offsetof(struct rseq, cpu_id)));
        if (cpu >= 0)
            return cpu;
    }
#endif
    return sched_getcpu();
}

static uint64_t run_here(void)
{
    int cpu = cpu_now();
    return cpu >= 0 && cpu < 0xffff ? (uint64_t)cpu + 1 : 0;
}

void mempool__run_awake(mempool *p)
{
    _Atomic uint64_t *w;
    uint64_t v;
    if (p->slot < 0)
        return;
    w = run_word(p, (uint64_t)p->slot + 1);
    v = run_here();
    if (pub.w != w || pub.v != v)
        publish(w, v);
}

/* This thread's CPU + 1 as it last published it in @p w (at its last
 * spin decision or wake-up), else asked: a sched_getcpu() less per
 * sleep. */
static uint64_t run_mine(_Atomic uint64_t *w)
{
    return pub.w == w ? pub.v & 0xffffu : run_here();
}

void mempool__run_asleep(mempool *p)
{
    _Atomic uint64_t *w;
    if (p->slot < 0)
        return;
    w = run_word(p, (uint64_t)p->slot + 1);
    publish(w, run_mine(w) | MP_RUN_ASLEEP);
    MP_FP(wait_published);
}

bool mempool__lead_on(void)
{
    return lead.on;
}

void mempool__lead(uint32_t key, bool woke)
{
    lead.key = key;
    lead.woke = woke;
    lead.on = true;
}

int mempool__hsleep(mempool *p, _Atomic uint32_t *word, _Atomic uint64_t *sl,
                    uint32_t seen, uint64_t deadline, uint64_t cap_ns)
{
    _Atomic uint64_t *place = NULL;
    int rc;
    mempool__run_asleep(p);
    /* No deadline and no cap of the caller's: the keeper looks again for
     * us after MP_SL_LOOK_NS, so the sleep arms no timer (keeper.c). */
    if (deadline == UINT64_MAX && !cap_ns)
        place = mempool__keep_look(p, word, sl,
                                   mp_mono_ns() + MP_SL_LOOK_NS);
    rc = mp_sleep(word, sl, seen, deadline, place ? MP_SL_UNCAPPED : cap_ns);
    mempool__keep_leave(place);
    mempool__run_awake(p);
    return rc;
}

void mempool__run_reap(mempool *p, int d)
{
    atomic_store_explicit(&p->hand->run[d], 0, memory_order_relaxed);
}

/* The bound a peer with run word @p pv allows a spinner on CPU + 1
 * @p me: 0 none (spin.h: RUN, WOKE). */
static uint64_t spin_limit(uint64_t pv, uint64_t me)
{
    uint64_t cpu = pv & 0xffffu;
    if (!cpu || !me || cpu == me)
        return 0;
    if (!(pv & MP_RUN_ASLEEP))
        return MP_SPIN_RUN_NS;
    return lead.woke ? MP_SPIN_WOKE_NS : 0;
}

/* pause between looks; the clock and the peer every SPIN_EVERY looks */
#define SPIN_EVERY 8u
/* Unanswered spins halve the bound, down to 1/32 of it; from there every
 * SPIN_PROBE-th decision spins the whole bound again: a pair that fell
 * asleep (a preempted peer, a slow wake-up) can only spin again after a
 * spin long enough to catch an answer. */
#define SPIN_SHIFT_MAX 5u
#define SPIN_PROBE 16u
/* A spin that ends this much past its bound was preempted: the CPU is
 * wanted by someone else, so the next bound is the smallest. */
#define SPIN_LATE_NS 20000u

/* Take @p gate (the side's spin gate: until when its spinner spins) for
 * a spin until @p until; false if another spins there now. */
static bool gate_take(_Atomic uint64_t *gate, uint64_t now, uint64_t until)
{
    uint64_t g;
    if (!gate)
        return true;
    g = atomic_load_explicit(gate, memory_order_relaxed);
    return g <= now && atomic_compare_exchange_strong(gate, &g, until);
}

static void gate_give(_Atomic uint64_t *gate, uint64_t until)
{
    if (gate)
        atomic_compare_exchange_strong(gate, &until, 0);
}

/* The bound's shift after @p fails unanswered spins in a row. */
static unsigned spin_shift(uint32_t fails)
{
    if (fails < SPIN_SHIFT_MAX)
        return fails;
    return (fails - SPIN_SHIFT_MAX) % SPIN_PROBE == SPIN_PROBE - 1
               ? 0 : SPIN_SHIFT_MAX;
}

/* The count after a spin: 0 answered, the floor's if it was preempted
 * (ran SPIN_LATE_NS past its bound), else one more (cycling at the floor
 * for the probes). */
static uint32_t spin_fails(uint32_t fails, bool moved, bool late)
{
    if (moved)
        return 0;
    if (late && fails < SPIN_SHIFT_MAX)
        return SPIN_SHIFT_MAX;
    return fails < SPIN_SHIFT_MAX + 1000u ? fails + 1 : SPIN_SHIFT_MAX;
}

/* May a stream spin (no lead: spin.h, STREAM) go on while the peer's
 * run word is @p pv? Only while it says awake on another CPU. */
static bool stream_ok(uint64_t pv, uint64_t me)
{
    uint64_t cpu = pv & 0xffffu;
    return cpu && me && cpu != me && !(pv & MP_RUN_ASLEEP);
}

/* Watch @p look until it differs from @p v0 (true), @p until passes or
 * the peer's run word @p pw stops allowing a spin (false): a spin with a
 * lead by spin_limit(), a @p stream one by stream_ok(). */
static bool spin_watch(mp_look_fn look, const void *arg, uint64_t v0,
                       _Atomic uint64_t *pw, uint64_t me, uint64_t until,
                       bool stream)
{
    for (unsigned i = 1;; i++) {
        uint64_t pv;
        mp_cpu_relax();
        if (look(arg) != v0)
            return true;
        if (i % SPIN_EVERY)
            continue;
        /* The peer went to sleep or onto our CPU: it will not answer
         * while we spin. */
        pv = atomic_load_explicit(pw, memory_order_relaxed);
        if (mp_mono_ns() >= until ||
            !(stream ? stream_ok(pv, me) : spin_limit(pv, me) != 0))
            return false;
    }
}

/* The yields a peer with run word @p pv allows a waiter on CPU + 1
 * @p me: 0 none (spin.h: YIELD). */
static unsigned yield_limit(uint64_t pv, uint64_t me)
{
    uint64_t cpu = pv & 0xffffu;
    if (!cpu || !me || cpu != me)
        return 0;
    if (!(pv & MP_RUN_ASLEEP) || lead.woke)
        return MP_SPIN_YIELDS;
    return 0;
}

/* This thread's yield back-off (util/yield_off.h: the rule). */
static _Thread_local mp_yield_off yq;

/* Give the CPU to the peer at most @p n times, until @p look differs
 * from @p v0 (true), a yield comes back late, or the peer's run word
 * @p pw says it will not answer on our CPU (asleep, elsewhere, unknown:
 * false). */
static bool yield_watch(mp_look_fn look, const void *arg, uint64_t v0,
                        _Atomic uint64_t *pw, uint64_t me, unsigned n)
{
    uint64_t t0 = mp_mono_ns(), t1;
    for (unsigned i = 0; i < n; i++, t0 = t1) {
        uint64_t pv;
        bool late;
        MP_FP(spin_yield);
        sched_yield();
        t1 = mp_mono_ns();
        late = mp_yield_timed(&yq, t0, t1);
        if (look(arg) != v0)
            return true;
        pv = atomic_load_explicit(pw, memory_order_relaxed);
        if (late || (pv & 0xffffu) != me || (pv & MP_RUN_ASLEEP))
            return false;
    }
    return false;
}

/* The peer is on our CPU: yield to it (spin.h: YIELD), unless yields
 * are put off. */
static bool spin_yield(mp_spin *st, mp_look_fn look, const void *arg,
                       _Atomic uint64_t *pw, uint64_t me, unsigned n)
{
    uint32_t fails = atomic_load_explicit(&st->fails, memory_order_relaxed);
    bool moved;
    n >>= spin_shift(fails);
    if (!n || (yq.off && mp_mono_ns() < yq.off))
        return false;
    moved = yield_watch(look, arg, look(arg), pw, me, n);
    atomic_store_explicit(&st->fails, spin_fails(fails, moved, false),
                          memory_order_relaxed);
    return moved;
}

/* Spin at most @p bound (halved by @p st's unanswered spins: spin_shift)
 * and until @p deadline while @p look (@p arg) stays, the peer's run word
 * @p pw allowing it (spin_watch), holding @p gate meanwhile (none if
 * another waiter holds it); @p st learns how it went. True if it moved. */
static bool spin_gated(_Atomic uint64_t *gate, mp_spin *st, uint64_t bound,
                       mp_look_fn look, const void *arg,
                       _Atomic uint64_t *pw, uint64_t me, uint64_t deadline,
                       bool stream)
{
    uint32_t fails = atomic_load_explicit(&st->fails, memory_order_relaxed);
    uint64_t limit = bound >> spin_shift(fails), now = mp_mono_ns(), until;
    bool moved;
    until = now + limit < deadline ? now + limit : deadline;
    if (!gate_take(gate, now, until))
        return false;
    if (stream)
        MP_FP(spin_stream);
    moved = spin_watch(look, arg, look(arg), pw, me, until, stream);
    gate_give(gate, until);
    atomic_store_explicit(&st->fails,
                          spin_fails(fails, moved,
                                     mp_mono_ns() > now + limit + SPIN_LATE_NS),
                          memory_order_relaxed);
    return moved;
}

bool mempool__spin(mempool *p, uint64_t peer1, _Atomic uint64_t *gate,
                   mp_spin *st, mp_look_fn look, const void *arg,
                   uint64_t deadline)
{
    uint64_t me, limit, pv;
    _Atomic uint64_t *pw;
    if (!lead.on)
        return false;
    lead.on = false;                 /* one spin decision per lead */
    if (!peer1 || peer1 > MP_WORKERS || lead.key == st->key)
        return false;
    /* A spinner keeps its own word fresh: its peer decides by it. */
    mempool__run_awake(p);
    me = p->slot >= 0 ? pub.v & 0xffffu : run_here();
    pw = run_word(p, peer1);
    pv = atomic_load_explicit(pw, memory_order_relaxed);
    limit = spin_limit(pv, me);
    if (!limit) {
        unsigned n = yield_limit(pv, me);
        return n && spin_yield(st, look, arg, pw, me, n);
    }
    return spin_gated(gate, st, limit, look, arg, pw, me, deadline, false);
}

/* This thread's stream naps (spin.h: NAP): unanswered ones in a row. */
static _Thread_local uint32_t nap_fails;

/* Every NAP_PROBE-th decision after an unanswered nap naps again. */
#define NAP_PROBE 16u

/* The last sender says awake on our CPU (spin.h: NAP): sleep
 * MP_SPIN_NAP_NS (at most until @p deadline), counted nowhere, then say
 * whether @p look moved. After an unanswered nap (a stale run word, a
 * sender that paused) only every NAP_PROBE-th such decision naps. */
static bool stream_nap(mp_look_fn look, const void *arg, uint64_t deadline)
{
    uint32_t f = nap_fails;
    uint64_t v0, until = mp_mono_ns() + MP_SPIN_NAP_NS;
    bool moved;
    if (f % NAP_PROBE) {
        nap_fails = f + 1;
        return false;
    }
    if (until > deadline)
        until = deadline;
    v0 = look(arg);
    MP_FP(spin_nap);
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
                    &(struct timespec){ (time_t)(until / 1000000000u),
                                        (long)(until % 1000000000u) },
                    NULL);
    moved = look(arg) != v0;
    nap_fails = moved ? 0 : f + 1;
    return moved;
}

bool mempool__spin_stream(mempool *p, uint64_t peer1, _Atomic uint64_t *gate,
                          mp_spin *st, mp_spin *sst, mp_look_fn look,
                          const void *arg, uint64_t deadline)
{
    _Atomic uint64_t *pw;
    uint64_t me, pv;
    if (lead.on || !sst)
        return mempool__spin(p, peer1, gate, st, look, arg, deadline);
    if (!peer1 || peer1 > MP_WORKERS)
        return false;
    /* Our own word fresh (the producer does not look at it; a peer that
     * answers our sends does), and our CPU for the comparison. */
    mempool__run_awake(p);
    me = p->slot >= 0 ? pub.v & 0xffffu : run_here();
    pw = run_word(p, peer1);
    pv = atomic_load_explicit(pw, memory_order_relaxed);
    if (me && (pv & 0xffffu) == me && !(pv & MP_RUN_ASLEEP))
        return stream_nap(look, arg, deadline);
    if (!stream_ok(pv, me))
        return false;
    return spin_gated(gate, sst, MP_SPIN_STREAM_NS, look, arg, pw, me,
                      deadline, true);
}

void mempool__spin_answered(mp_spin *sst)
{
    /* The handle's own memory, but shared by its threads: no store (and
     * no line taken) when there is nothing to forget. */
    if (atomic_load_explicit(&sst->fails, memory_order_relaxed))
        atomic_store_explicit(&sst->fails, 0, memory_order_relaxed);
}
