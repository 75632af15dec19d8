/* SPDX-License-Identifier: MIT */
/*
 * top_screen.c - mempool-top's live view. The screen is a header (arena and
 * disk bars, object counts, rates computed from two successive samples)
 * and one row per worker, sortable. It is drawn with plain ANSI sequences
 * (alternate screen, cursor home, erase to end of line), so there is no
 * curses dependency; with stdout not a terminal, or -b, frames are printed
 * as plain text.
 */
#include "top.h"
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t resize_flag;

/* ---- rates ---------------------------------------------------------------- */

static const struct mempool_worker_stats *
prev_worker(const struct snap *prev, const struct mempool_worker_stats *w)
{
    for (int i = 0; prev && i < prev->nw; i++)
        if (prev->w[i].id == w->id && prev->w[i].attached_ns == w->attached_ns)
            return &prev->w[i];
    return NULL;
}

static double per_s(uint64_t now, uint64_t then, double dt)
{
    return dt > 0 && now >= then ? (double)(now - then) / dt : NAN;
}

static uint64_t ops_of(const struct mempool_worker_stats *w)
{
    return w->sets + w->gets + w->deletes;
}

/* ---- sorting ------------------------------------------------------------ */

static int sort_key, sort_rev;

static double key_of(const struct row *r)
{
    const struct mempool_worker_stats *w = r->w;
    switch (sort_key) {
    case K_PID:    return w->pid;
    case K_RES:    return (double)w->resident_bytes;
    case K_PIN:    return (double)w->pinned_bytes;
    case K_OBJ:    return (double)w->objects;
    case K_OPS:    return isnan(r->ops) ? -1 : r->ops;
    case K_SPILLS: return (double)w->spills;
    case K_ERRS:   return (double)w->errors;
    default:       return w->id;
    }
}

static int by_key(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    double kx = key_of(x), ky = key_of(y);
    int c = kx < ky ? -1 : kx > ky;
    if (sort_key != K_ID && sort_key != K_PID)
        c = -c;                     /* sizes and rates: biggest first */
    if (c == 0)
        c = x->w->id - y->w->id;
    return sort_rev ? -c : c;
}

/* ---- drawing ------------------------------------------------------------ */

/* The frame being drawn: lines of text that may hold SGR sequences. */
struct screen {
    char  **line;
    int     n, cap;
    bool    ansi;      /* colours and bars in colour */
    int     cols, rows;
};

static void put(struct screen *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct screen *sc, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s)
        return;
    if (sc->n == sc->cap) {
        char **nl = realloc(sc->line, (size_t)(sc->cap = sc->cap ? sc->cap * 2
                                                                 : 64) *
                                          sizeof(char *));
        if (!nl) {
            free(s);
            return;
        }
        sc->line = nl;
    }
    sc->line[sc->n++] = s;
}

static void screen_clear(struct screen *sc)
{
    for (int i = 0; i < sc->n; i++)
        free(sc->line[i]);
    sc->n = 0;
}

static const char *sgr(const struct screen *sc, const char *code)
{
    return sc->ansi ? code : "";
}

/* "[|||||     ]" of @p width cells for @p frac, coloured by level. */
static const char *bar(const struct screen *sc, char *buf, size_t len,
                       int width, double frac)
{
    char cells[64];
    int fill;
    const char *col = frac >= 0.9 ? "\033[31m" : frac >= 0.7 ? "\033[33m"
                                                             : "\033[32m";
    width = width < (int)sizeof cells ? width : (int)sizeof cells - 1;
    fill = isnan(frac) ? 0 : (int)lround(fmin(fmax(frac, 0), 1) * width);
    memset(cells, '|', (size_t)fill);
    cells[fill] = '\0';
    snprintf(buf, len, "[%s%s%s%*s]", sgr(sc, col), cells, sgr(sc, "\033[0m"),
             width - fill, "");
    return buf;
}

static const char *fmt_rate(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (v >= 1e6)
        snprintf(buf, len, "%.1fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, len, "%.1fk", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
    return buf;
}

static const char *fmt_hms(uint64_t ns, char *buf, size_t len)
{
    uint64_t s = ns / 1000000000u;
    if (s >= 86400)
        snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
                 s / 3600 % 24);
    else
        snprintf(buf, len, "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600,
                 s / 60 % 60, s % 60);
    return buf;
}

static const char *state_name(const struct screen *sc, uint32_t st)
{
    switch (st) {
    case MEMPOOL_WORKER_ALIVE: return "alive";
    case MEMPOOL_WORKER_DEAD:  return sc->ansi ? "\033[1;31mDEAD\033[0m "
                                               : "DEAD ";
    case MEMPOOL_WORKER_GONE:  return "gone ";
    default:                   return "free ";
    }
}

static void draw_header(struct screen *sc, const struct opts *o,
                        const struct snap *cur, const struct snap *prev,
                        bool removed)
{
    const struct mempool_stats *s = &cur->s;
    double dt = prev ? (double)(cur->t - prev->t) / 1e9 : 0;
    char a[32], b[32], c[32], d[32], e[32], bb[160], clock[16], up[32];
    struct timespec now;
    struct tm tm;
    double fs_used;

    clock_gettime(CLOCK_REALTIME, &now);
    localtime_r(&now.tv_sec, &tm);
    strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    put(sc, "%smempool-top%s - pool %s%s%s%s  up %s  %s  every %.1fs  sort %s%s",
        sgr(sc, "\033[1m"), sgr(sc, "\033[0m"), s->name,
        removed ? sgr(sc, "\033[1;31m") : "", removed ? " [destroyed]" : "",
        removed ? sgr(sc, "\033[0m") : "",
        fmt_hms((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec -
                    s->created_ns, up, sizeof up),
        clock, o->interval, top_sort_names[sort_key], sort_rev ? " (rev)" : "");
    put(sc, "Arena   %s %5.1f%%  %s / %s  largest free %s%s",
        bar(sc, bb, sizeof bb, 30,
            s->data_bytes ? (double)s->used_bytes / (double)s->data_bytes : 0),
        s->data_bytes ? 100.0 * (double)s->used_bytes / (double)s->data_bytes
                      : 0.0,
        cli_fmt_bytes(s->used_bytes, a, sizeof a),
        cli_fmt_bytes(s->data_bytes, b, sizeof b),
        cli_fmt_bytes(s->largest_free_bytes, c, sizeof c), sgr(sc, "\033[0m"));
    fs_used = s->fs_total_bytes
                  ? (double)(s->fs_total_bytes - s->fs_free_bytes) /
                        (double)s->fs_total_bytes : 0;
    put(sc, "Disk    %s %5.1f%%  spill files %s, fs %s free of %s  io %s",
        bar(sc, bb, sizeof bb, 30, fs_used), 100 * fs_used,
        cli_fmt_bytes(s->disk_bytes, a, sizeof a),
        cli_fmt_bytes(s->fs_free_bytes, b, sizeof b),
        cli_fmt_bytes(s->fs_total_bytes, c, sizeof c),
        s->pool_io_backend[0] ? s->pool_io_backend : "-");
    put(sc, "Objects %" PRIu64 " of %" PRIu64 ": %" PRIu64 " in memory (%s), %"
            PRIu64 " on disk (%s), %" PRIu64 " pinned (%s), %" PRIu64
            " reserved, %" PRIu64 " deleted",
        s->objects, s->max_objects, s->mem_objects,
        cli_fmt_bytes(s->resident_bytes, a, sizeof a), s->disk_objects,
        cli_fmt_bytes(s->disk_bytes, b, sizeof b), s->pinned_objects,
        cli_fmt_bytes(s->pinned_bytes, c, sizeof c), s->reserved_objects,
        s->deleted_objects);
    put(sc, "Rates   sets/s %s  gets/s %s  deletes/s %s  spill %s MB/s  "
            "restores/s %s",
        fmt_rate(prev ? per_s(s->sets, prev->s.sets, dt) : NAN, a, sizeof a),
        fmt_rate(prev ? per_s(s->gets, prev->s.gets, dt) : NAN, b, sizeof b),
        fmt_rate(prev ? per_s(s->deletes, prev->s.deletes, dt) : NAN, c,
                 sizeof c),
        prev && dt > 0 && s->spill_bytes >= prev->s.spill_bytes
            ? (snprintf(d, sizeof d, "%.1f",
                        (double)(s->spill_bytes - prev->s.spill_bytes) / dt /
                            1e6), d)
            : "-",
        fmt_rate(prev ? per_s(s->restores, prev->s.restores, dt) : NAN, e,
                 sizeof e));
    put(sc, "Workers %" PRIu32 " attached: %" PRIu32 " alive, %s%" PRIu32
            " dead%s  spiller %s  reaped %" PRIu64 "  pins recovered %" PRIu64
            "  failed spills %" PRIu64 "  failed sets %" PRIu64
            "  corrupt %" PRIu64,
        s->workers, s->workers_alive,
        s->workers_dead ? sgr(sc, "\033[1;31m") : "", s->workers_dead,
        s->workers_dead ? sgr(sc, "\033[0m") : "",
        s->spiller == 0 ? "none"
        : (snprintf(a, sizeof a, "#%d%s", s->spiller,
                    s->spiller_alive ? "" : " (dead)"), a),
        s->reaped_workers, s->recovered_pins, s->spill_errors, s->set_errors,
        s->corrupt_files);
    put(sc, "%s", "");
}

static void draw_workers(struct screen *sc, const struct opts *o,
                         const struct snap *cur, const struct snap *prev)
{
    struct row rows[MAXW] = { { NULL, 0 } };
    double dt = prev ? (double)(cur->t - prev->t) / 1e9 : 0;
    int n = 0;

    for (int i = 0; i < cur->nw; i++) {
        const struct mempool_worker_stats *w = &cur->w[i], *pw;
        if (w->state == MEMPOOL_WORKER_GONE && !o->show_gone)
            continue;
        pw = prev_worker(prev, w);
        rows[n].w = w;
        rows[n].ops = pw ? per_s(ops_of(w), ops_of(pw), dt) : NAN;
        n++;
    }
    qsort(rows, (size_t)n, sizeof rows[0], by_key);
    put(sc, "%s%4s %8s %-5s %-36s %10s %8s %8s %7s %5s%s",
        sgr(sc, "\033[7m"), "ID", "PID", "STATE", "RESIDENT / LIMIT",
        "PINNED", "OBJECTS", "OPS/S", "SPILLS", "ERRS", sgr(sc, "\033[0m"));
    for (int i = 0; i < n; i++) {
        const struct mempool_worker_stats *w = rows[i].w;
        char a[32], b[32], c[32], r[16], pid[16] = "-", bb[96], lim[48];
        double frac = w->max_memsize ? (double)w->resident_bytes /
                                           (double)w->max_memsize : NAN;
        if (w->pid > 0)
            snprintf(pid, sizeof pid, "%d", w->pid);
        snprintf(lim, sizeof lim, "%s / %s",
                 cli_fmt_bytes(w->resident_bytes, a, sizeof a),
                 w->max_memsize ? cli_fmt_bytes(w->max_memsize, b, sizeof b)
                                : "none");
        put(sc, "%4d %8s %s %s %-21s %10s %8" PRIu64 " %8s %7" PRIu64
                " %5" PRIu64 "%s",
            w->id, pid, state_name(sc, w->state),
            bar(sc, bb, sizeof bb, 12, frac), lim,
            cli_fmt_bytes(w->pinned_bytes, c, sizeof c), w->objects,
            fmt_rate(rows[i].ops, r, sizeof r), w->spills, w->errors,
            w->spiller ? "  spiller" : "");
    }
    if (n == 0)
        put(sc, "  (no workers attached)");
}

/* The same channel in the previous snapshot (for rates), or NULL. */
static const mempool_chan_info *prev_chan(const struct snap *prev,
                                          const mempool_chan_info *c)
{
    for (int i = 0; prev && i < prev->nc; i++)
        if (strcmp(prev->c[i].name, c->name) == 0)
            return &prev->c[i];
    return NULL;
}

/* Names, references in flight, and one row per channel. */
static void draw_channels(struct screen *sc, const struct snap *cur,
                          const struct snap *prev)
{
    const struct mempool_stats *s = &cur->s;
    double dt = prev ? (double)(cur->t - prev->t) / 1e9 : 0;
    put(sc, "%s", "");
    put(sc, "Handoff  names %" PRIu64 "/%" PRIu64 "  in flight %" PRIu64
            " (given %" PRIu64 ", taken %" PRIu64 ", expired %" PRIu64
            ")  items %" PRIu64 "/%" PRIu64 "  channels %" PRIu64,
        s->names, s->names_capacity, s->flight_refs, s->flight_given,
        s->flight_taken, s->flight_expired, s->items_used, s->items_capacity,
        s->channels);
    if (cur->nc == 0)
        return;
    put(sc, "%s%-24s %-9s %6s %6s %9s %9s %8s %5s %5s %6s%s",
        sgr(sc, "\033[7m"), "CHANNEL", "MODE", "DEPTH", "CAP", "SENT/S",
        "RECV/S", "DROPPED", "S.WT", "R.WT", "REFS", sgr(sc, "\033[0m"));
    for (int i = 0; i < cur->nc; i++) {
        const mempool_chan_info *c = &cur->c[i], *pc = prev_chan(prev, c);
        char a[16], b[16];
        put(sc, "%-24.24s %-9s %6" PRIu64 " %6" PRIu32 " %9s %9s %8" PRIu64
                " %5" PRIu32 " %5" PRIu32 " %6" PRIu64,
            c->name, (c->flags & MEMPOOL_CHAN_BROADCAST) ? "broadcast"
                                                         : "queue",
            c->depth, c->capacity,
            fmt_rate(pc ? per_s(c->sent, pc->sent, dt) : NAN, a, sizeof a),
            fmt_rate(pc ? per_s(c->received, pc->received, dt) : NAN, b,
                     sizeof b),
            c->dropped, c->senders_waiting, c->receivers_waiting, c->refs);
    }
}

static void draw(struct screen *sc, const struct opts *o,
                 const struct snap *cur, const struct snap *prev, bool removed)
{
    screen_clear(sc);
    draw_header(sc, o, cur, prev, removed);
    draw_workers(sc, o, cur, prev);
    draw_channels(sc, cur, prev);
}

/* Length of @p s on screen, SGR sequences excluded, cut at @p max. */
static void emit_line(FILE *f, const char *s, int max)
{
    int vis = 0;
    for (; *s; s++) {
        if (*s == '\033') {
            const char *e = strchr(s, 'm');
            if (!e)
                break;
            fwrite(s, 1, (size_t)(e - s + 1), f);
            s = e;
            continue;
        }
        if (max > 0 && vis >= max)
            continue;
        fputc(*s, f);
        vis++;
    }
}

static void show(struct screen *sc, bool interactive)
{
    if (!interactive) {
        for (int i = 0; i < sc->n; i++) {
            emit_line(stdout, sc->line[i], 0);
            fputc('\n', stdout);
        }
        fputc('\n', stdout);
        fflush(stdout);
        return;
    }
    fputs("\033[H", stdout);
    for (int i = 0; i < sc->n && i < sc->rows - 1; i++) {
        emit_line(stdout, sc->line[i], sc->cols);
        fputs("\033[0m\033[K\n", stdout);
    }
    fputs("\033[J", stdout);
    /* the key line, on the terminal's last row */
    fprintf(stdout, "\033[%d;1H\033[7m q quit  s/S sort (%s)  r reverse  "
                    "g gone workers  +/- interval \033[0m\033[K",
            sc->rows, top_sort_names[sort_key]);
    fflush(stdout);
}

/* ---- terminal ----------------------------------------------------------- */

static struct termios saved_tio;
static bool tio_saved, alt_screen;

static void term_restore(void)
{
    if (alt_screen) {
        fputs("\033[0m\033[?25h\033[?1049l", stdout);
        fflush(stdout);
        alt_screen = false;
    }
    if (tio_saved) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
        tio_saved = false;
    }
}

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        resize_flag = 1;
    else
        top_quit = 1;
}

static void term_setup(struct screen *sc)
{
    struct sigaction sa;
    struct termios t;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;       /* no SA_RESTART: poll() wakes up */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        t = saved_tio;
        t.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        tio_saved = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    }
    atexit(term_restore);
    fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
    alt_screen = true;
    sc->ansi = true;
}

static void term_size(struct screen *sc)
{
    struct winsize ws;
    sc->cols = 80;
    sc->rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
        sc->cols = ws.ws_col;
        sc->rows = ws.ws_row;
    }
}

/* Handle one key; returns true if the frame must be redrawn. */
static bool key(int c, struct opts *o)
{
    switch (c) {
    case 'q': case 'Q': case 3:
        top_quit = 1;
        return false;
    case 's': case '>':
        sort_key = (sort_key + 1) % K_N;
        return true;
    case 'S': case '<':
        sort_key = (sort_key + K_N - 1) % K_N;
        return true;
    case 'r':
        sort_rev = !sort_rev;
        return true;
    case 'g':
        o->show_gone = !o->show_gone;
        return true;
    case '+':
        o->interval = fmin(o->interval * 2, 60);
        return true;
    case '-':
        o->interval = fmax(o->interval / 2, 0.1);
        return true;
    default:
        return false;
    }
}

/* Wait until @p deadline (monotonic ns) or a key that needs a redraw. */
static bool wait_keys(uint64_t deadline, struct opts *o, bool keys)
{
    while (!top_quit && !resize_flag) {
        uint64_t now = cli_now_ns();
        struct pollfd pf = { .fd = STDIN_FILENO, .events = POLLIN };
        int ms;
        if (now >= deadline)
            return false;
        ms = (int)((deadline - now + 999999) / 1000000);
        if (!keys) {
            poll(NULL, 0, ms);
            continue;
        }
        if (poll(&pf, 1, ms) > 0) {
            char buf[16];
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            bool redraw = false;
            if (n <= 0) {
                keys = false;        /* end of input: just wait */
                continue;
            }
            for (ssize_t i = 0; i < n; i++)
                redraw |= key((unsigned char)buf[i], o);
            if (redraw || top_quit)
                return redraw;
        }
    }
    return resize_flag;
}

int top_run_view(mempool *p, struct opts *o, bool interactive)
{
    struct snap *cur = calloc(1, sizeof *cur), *prev = calloc(1, sizeof *prev);
    struct screen sc = { 0 };
    long frames = 0;
    int rc = 0;

    if (!cur || !prev) {
        free(cur);
        free(prev);
        return -ENOMEM;
    }
    sort_key = o->sort;
    sort_rev = o->reverse;
    sc.cols = 0;
    if (interactive)
        term_setup(&sc);
    bool have_prev = false;
    while (!top_quit) {
        uint64_t deadline;
        if ((rc = top_take(p, cur)))
            break;
        if (interactive)
            term_size(&sc);
        draw(&sc, o, cur, have_prev ? prev : NULL,
             top_pool_removed(o->name));
        show(&sc, interactive);
        if (o->count && ++frames >= o->count)
            break;
        deadline = cli_now_ns() + (uint64_t)(o->interval * 1e9);
        while (wait_keys(deadline, o, interactive && tio_saved)) {
            resize_flag = 0;
            if (interactive)
                term_size(&sc);
            draw(&sc, o, cur, have_prev ? prev : NULL,
             top_pool_removed(o->name));
            show(&sc, interactive);
        }
        struct snap *t = prev;
        prev = cur;
        cur = t;
        have_prev = true;
    }
    if (interactive)
        term_restore();
    screen_clear(&sc);
    free(sc.line);
    free(cur);
    free(prev);
    return rc;
}
