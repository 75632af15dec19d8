/* SPDX-License-Identifier: MIT */
/*
 * spin.h - an adaptive, bounded spin before a handoff futex sleep: the
 * adaptive mutex's idea (Solaris, the kernel's mutex: spin while the
 * owner runs on another CPU; glibc's PTHREAD_MUTEX_ADAPTIVE_NP: a bound
 * that adapts to past spins) applied to a wait for another process.
 *
 * Why: a futex wake-up of a task asleep on another CPU costs ~15 us on
 * this machine's VM (an idle vCPU wakes through the hypervisor), and
 * FUTEX_WAKE has no "run the wakee here" hint (a pipe's wake-up has one,
 * WF_SYNC; neither futex(2) nor futex2's FUTEX2_* flags offer one up to
 * 6.18). A waiter whose peer runs on another CPU and will answer in a
 * microsecond or two is better off watching the word it would sleep on.
 *
 * When it helps: a request/response. A thread's wait spins only if the
 * thread sent (or bound a name) since its last spin or sleep, on
 * something else than what it now waits on - its lead, spent by the wait:
 * B received on "ping", sent on "pong" and now waits on "ping" again. A
 * producer blocked on a full channel (its lead is that channel) does not
 * spin: receivers wake it a batch at a time (chan_item.c). A stream's
 * consumer (receives only, no lead) spins only the short STREAM bound
 * below: a 10 us spin (session 6) took each item the moment it landed,
 * trading the batches a sleeping consumer drains for a cache-line
 * transfer per item (1->1 stream 0.8x, refcounted 0.6x).
 *
 * STREAM (session 9): a queue receiver without a lead, whose last sender
 * says awake on another CPU, watches the ring at most MP_SPIN_STREAM_NS
 * (1.5 us, about what the sleep it replaces costs) before counting itself
 * asleep. Without it, a consumer close behind its producer on another
 * CPU lived in a near miss: it emptied the ring, counted itself, and the
 * next item landed before its FUTEX_WAIT reached the kernel (EAGAIN), the
 * producer having paid a FUTEX_WAKE for nobody on seeing the count. On 2M
 * objects, two CPUs, main dec75df: the consumer counted itself 17-39k
 * times and 89-93% of its FUTEX_WAITs returned EAGAIN; the producer made
 * 16-38k FUTEX_WAKEs, 2-5% of which woke anybody (0.017-0.038 futex calls
 * per object in these runs; 0.117 on the lead's quiet machine). With the
 * spin, same runs: 200-320 counted sleeps and as many wakes (0.0002-
 * 0.0003 per object): the producer, the slower side, no longer pays a
 * system call for a consumer that was never going to sleep. The bound
 * adapts like the others (halved by unanswered spins, in the handle's
 * spin_stream), except that a spin whose last check then finds the item
 * counts as answered (mempool__spin_answered(): it was only short; without
 * that the halving fed itself - shorter spins, more unanswered ones -
 * and 2/3 of the spins ended just before their item). The gate keeps it
 * to one spinning receiver per channel. A producer publishes its run word
 * (one sched_getcpu) only when a send made a FUTEX_WAKE that woke someone
 * - next to the system call, free; until its first, a consumer does not
 * spin. A thread with a lead spins by the lead's rules instead. Only a
 * receiver of direct items (plain objects) spins so: a handle whose last
 * item came in a box (refcounted) does not (chan_queue.c, note_kind).
 * Measured at the end of session 9, quiet machine, interleaved: the
 * refcounted stream ran 6-8 % slower with the spin (3.2-3.4 against
 * 3.4-3.5 M/s without it; a spinning receiver takes each boxed item as it
 * lands, its box and reference lines with it), and with the boxed ones
 * left out it ran as without (3.3-3.6 M/s); 4x4, plain items, spins as
 * before.
 *
 * NAP (session 11): a queue receiver without a lead whose last sender
 * says awake on OUR CPU sleeps MP_SPIN_NAP_NS (clock_nanosleep, counted
 * nowhere: no sender makes a FUTEX_WAKE for it) before its last check,
 * instead of counting itself asleep at once. Counted, it was woken by the
 * very next send, and the wake-up put it on the sender's CPU and let it
 * preempt the sender: it took that one item and slept again, a FUTEX_WAKE,
 * a FUTEX_WAIT and two context switches per item (sched tracepoints, 4x4
 * stream of 1M objects on 2 CPUs: runs with 1,000-2,000 such preemptions
 * of a producer by a consumer ran at 8-9 M/s, runs with < 100 at 10-10.5;
 * a producer and its consumer sharing a CPU traded one item per ~10 us).
 * Napping, it lets the sender run on and finds a batch (50 us: ~500 items
 * at this machine's ~100 ns a send, half the bench's 1024-slot ring). A
 * nap whose look did not move (a stale run word: a sender that moved
 * elsewhere or paused) is followed by counted sleeps, a nap again only
 * every 16th such decision. The cost: an item sent during a nap waits for
 * its end, at most MP_SPIN_NAP_NS longer, when its receiver shares the
 * sender's CPU (it would have run only by preempting the sender).
 *
 * When it cannot hurt: only while the peer that will end the wait is
 * known to run on ANOTHER CPU. Each worker publishes, in one word of the
 * handoff header (mp_hand.run[slot], written only by itself), the CPU it
 * last woke up or made a spin decision on (sched_getcpu(), ~7 ns here)
 * and whether it is asleep in a handoff wait. Sends and receives do not
 * touch it (a stream pays nothing) except a send that woke a sleeper
 * (STREAM above); a pair in the spinning regime keeps it fresh through
 * its spin decisions. The channels, the names
 * directory and the entry word say who the peer is (the last sender, the
 * last receiver, the last binder, the writer of a reservation). A waiter
 * spins
 *
 *   RUN   while the peer's word says awake on another CPU: at most
 *         MP_SPIN_RUN_NS;
 *   WOKE  while the peer's word says asleep, last on another CPU, and
 *         the send of our lead woke a sleeper (the peer we just woke is
 *         on its way): at most MP_SPIN_WOKE_NS.
 *
 * and never when the peer is on our CPU (spinning would only keep it off
 * the CPU), unknown (an older library, a reaped slot), or asleep without
 * a wake-up of ours. When the peer is on OUR CPU it may get the CPU:
 *
 *   YIELD while the peer's word says awake on our CPU (runnable, since we
 *         run), or asleep there right after the send of our lead woke a
 *         sleeper: at most MP_SPIN_YIELDS sched_yield() calls, a look
 *         after each. The peer runs at once; its answer finds nobody
 *         counted asleep, so it makes no FUTEX_WAKE; and it yields back
 *         the same way when it waits for our next request. On one CPU a
 *         round trip is then two yields and two switches, against two
 *         FUTEX_WAIT, two FUTEX_WAKE and two switches (session 7: 3.4-3.8
 *         us against 5.5 us; a pipe 5.1 us). It stops when the peer's
 *         word says asleep or elsewhere after a yield. A yield that comes
 *         back more than MP_YIELD_LATE_NS later gave the CPU to somebody
 *         else (a busy CPU: sched_yield() puts the yielder behind everyone
 *         runnable there, a whole time slice per yield - a CPU hog beside
 *         the pair made round trips 2.7 ms): that thread's yields are then
 *         off for MP_YIELD_OFF_MIN_NS, doubling with every late one up to
 *         MP_YIELD_OFF_MAX_NS, and it sleeps as before; the back-off is
 *         forgotten only after MP_YIELD_OFF_MAX_NS without a late yield
 *         (forgetting it at each quick one still lost a slice every few
 *         ms beside a hog: 8.7 us round trips against main's 5.6-6.1).
 *         The rule and figures: util/yield_off.h, shared with get_wait's
 *         publish yield (core/entry_wake.c).
 *         Unanswered yields count like unanswered spins (below).
 *
 * The spin reads only the word the wait would sleep on
 * (or the ring slot it would take next) and, every few iterations, the
 * clock and the peer's run word; it writes nothing shared but its own
 * run word and its channel side's gate (below). Spins that end
 * without the word moving (the peer did not answer in time) halve the
 * next bound, down to 1/32 of it (at once if the spin was preempted: the
 * CPU is wanted), where every 16th decision probes with the whole bound
 * (a pair that fell asleep can only spin again after a spin long enough
 * to catch an answer); one that sees the word move resets it. One waiter
 * per channel side spins at a time (its gate word: until when its one
 * spinner spins, so it expires by itself; like the kernel's one
 * optimistic spinner per mutex): four receivers on two CPUs do not burn
 * both while one of them would get the item anyway. After a spin the wait goes on exactly as before it existed: last check,
 * counted, FUTEX_WAIT (sleepers.h), so no wake-up can be lost by it.
 *
 * The run word is a hint: a process that blocks elsewhere (a pipe, a
 * sleep) or is preempted still says awake and costs a spinner one bound;
 * several threads of one process share their slot's word; the reaper
 * zeroes a dead worker's.
 */
#ifndef MEMPOOL_SPIN_H
#define MEMPOOL_SPIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

#define MP_SPIN_RUN_NS     10000u   /* peer awake on another CPU */
#define MP_SPIN_WOKE_NS    30000u   /* peer we just woke, on another CPU */
#define MP_SPIN_STREAM_NS  1500u   /* a stream's receiver, no lead */
#define MP_SPIN_YIELDS     4u       /* peer runnable on our CPU */
#define MP_SPIN_NAP_NS     50000u   /* a stream's receiver, sender on our CPU */

/* mp_hand.run[slot]: CPU + 1 (0: unknown) | MP_RUN_ASLEEP. */
#define MP_RUN_ASLEEP (UINT64_C(1) << 16)

/* What a wait waits on, to tell a request/response from a stream: a
 * channel (by index), the names directory, an entry (never a lead). */
#define MP_SPIN_KEY_ENTRY   0u
#define MP_SPIN_KEY_NAMES   1u
#define MP_SPIN_KEY_CHAN(ci) (0x100u + (uint32_t)(ci))

/* One wait site's memory of its past spins (per thread or channel
 * handle, which threads may share: relaxed atomics, a hint). */
typedef struct mp_spin {
    uint32_t key;                  /* MP_SPIN_KEY_*: what it waits on */
    _Atomic uint32_t fails;        /* spins in a row the peer did not end */
} mp_spin;

/* The value a spin watches; it ends when this differs from its first. */
typedef uint64_t (*mp_look_fn)(const void *arg);

/* A look at a 32-bit futex word (@p arg). */
static inline uint64_t mp_look_u32(const void *arg)
{
    return atomic_load((_Atomic uint32_t *)arg);
}

/* This worker runs: its run word says so, on this CPU. No load; a store
 * only when this thread's last publication differs. */
void mempool__run_awake(mempool *p);

/* This thread just sent on / bound in @p key (MP_SPIN_KEY_*), waking
 * a sleeper if @p woke: its next wait elsewhere is likely for the answer
 * (a lead, above). */
void mempool__lead(uint32_t key, bool woke);

/* Has this thread a lead now (its next wait spins by the lead's rules)? */
bool mempool__lead_on(void);

/* Remember in @p hint (a channel's sender / receiver word, the names'
 * binder word) that this worker is the last to act there. */
static inline void mempool__peer_note(mempool *p, _Atomic uint64_t *hint)
{
    uint64_t me = (uint64_t)(p->slot + 1);
    if (p->slot >= 0 && atomic_load_explicit(hint, memory_order_relaxed) != me)
        atomic_store_explicit(hint, me, memory_order_relaxed);
}

/* Spin while worker @p peer1 - 1 (slot + 1; 0 unknown) may end the wait
 * (RUN / WOKE above), at most the bound and @p deadline, until
 * @p look (@p arg) changes. True when it changed: look again before any
 * sleep. False at once when spinning cannot help, or when another waiter
 * of the same side holds @p gate (NULL: none), a word that says until
 * when its one spinner spins (kill-safe: it expires by itself). */
bool mempool__spin(mempool *p, uint64_t peer1, _Atomic uint64_t *gate,
                   mp_spin *st, mp_look_fn look, const void *arg,
                   uint64_t deadline);

/* A receive's spin (STREAM above): mempool__spin() if this thread has a
 * lead or @p sst is NULL; else, while worker @p peer1 - 1 (the last
 * sender) says awake on another CPU, at most MP_SPIN_STREAM_NS (halved
 * by @p sst's unanswered spins) holding @p gate; if it says awake on our
 * CPU, a nap (NAP above). */
bool mempool__spin_stream(mempool *p, uint64_t peer1, _Atomic uint64_t *gate,
                          mp_spin *st, mp_spin *sst, mp_look_fn look,
                          const void *arg, uint64_t deadline);

/* The last check after a stream spin found what the spin waited for: the
 * spin was not in vain, only a little short; @p sst forgets its
 * unanswered spins. */
void mempool__spin_answered(mp_spin *sst);

/* This worker is about to sleep in a handoff wait: its run word says so
 * (WOKE spinners may still wait for it; RUN ones stop). */
void mempool__run_asleep(mempool *p);

/* mp_sleep() (sleepers.h) with this worker's run word saying asleep
 * meanwhile; without a timer when neither @p deadline nor @p cap_ns is
 * set (the handle's keeper looks again for it: keeper.h). */
int mempool__hsleep(mempool *p, _Atomic uint32_t *word, _Atomic uint64_t *sl,
                    uint32_t seen, uint64_t deadline, uint64_t cap_ns);

/* The run word of a dead worker @p d goes back to unknown (reaper). */
void mempool__run_reap(mempool *p, int d);

#endif /* MEMPOOL_SPIN_H */
