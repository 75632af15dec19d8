/* SPDX-License-Identifier: MIT */
/*
 * demo_consumers.c - the consumer processes of `mempool demo`, seen from
 * the producer: start them (a channel "demo.<i>" each, then this binary
 * re-executed as `mempool demo-consumer`), send them DRefs, read their
 * report lines, notice one that died, stop and reap them. Both phases
 * (demo.c, demo_table.c) talk to the consumers through these functions;
 * this file calls neither of them.
 */
#include "demo.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Create consumer @p i's channel, then fork and exec `mempool
 * demo-consumer` for it. */
static int start_consumer(struct demo *d, int i, int report_w)
{
    char name[32];
    snprintf(name, sizeof name, "demo.%d", i + 1);
    int rc = mempool_chan_open(d->p, name, DEMO_MAX_INFLIGHT,
                               MEMPOOL_CHAN_CREATE, &d->c[i].ch);
    if (rc < 0)
        return rc;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        char idx[16], out[16];
        snprintf(idx, sizeof idx, "%d", i + 1);
        snprintf(out, sizeof out, "%d", report_w);
        fcntl(report_w, F_SETFD, 0); /* survives the exec */
        char *args[] = {"mempool", "demo-consumer", (char *)d->pool, idx,
                        out, NULL};
        execv(d->self, args);
        perror("mempool demo: exec");
        _exit(127);
    }
    d->c[i].pid = pid;
    return 0;
}

int demo_send(struct demo *d, int i, mempool_dref r)
{
    return mempool_chan_send(d->c[i].ch, r, DEMO_STALL_MS);
}

int demo_consumers_start(struct demo *d)
{
    ssize_t n = readlink("/proc/self/exe", d->self, sizeof d->self - 1);
    if (n < 0)
        return -errno;
    d->self[n] = '\0';
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    d->report_fd = fds[0];
    int rc = 0;
    for (int i = 0; i < d->nconsumers && rc == 0; i++)
        rc = start_consumer(d, i, fds[1]);
    close(fds[1]); /* only consumers hold the write end now */
    return rc;
}

/* Wait for consumer @p c and keep its exit status. */
static void reap(struct consumer *c, int flags)
{
    pid_t w;
    while ((w = waitpid(c->pid, &c->status, flags)) < 0 && errno == EINTR)
        ;
    if (w == c->pid || w < 0)
        c->pid = 0;
    if (w < 0)
        c->status = -1;
}

int demo_consumers_stop(struct demo *d, bool kill_first)
{
    int failed = 0;
    for (int i = 0; i < d->nconsumers; i++) {
        struct consumer *c = &d->c[i];
        if (c->ch) {             /* its recv returns -EPIPE: it is done */
            char name[32];
            snprintf(name, sizeof name, "demo.%d", i + 1);
            mempool_chan_destroy(d->p, name);
            mempool_chan_close(c->ch);
        }
        c->ch = NULL;
        if (c->pid > 0 && kill_first)
            kill(c->pid, SIGTERM);
        if (c->pid > 0)
            reap(c, 0);
        failed += !(WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0);
    }
    return failed;
}

/* True if a consumer has exited while the producer still waits on it. */
static bool consumer_died(struct demo *d)
{
    for (int i = 0; i < d->nconsumers; i++) {
        pid_t pid = d->c[i].pid;
        if (pid > 0)
            reap(&d->c[i], WNOHANG);
        if (pid > 0 && d->c[i].pid == 0) {
            fprintf(stderr, "mempool demo: consumer %d (pid %d) exited "
                    "early\n", i + 1, (int)pid);
            return true;
        }
    }
    return false;
}

int demo_next_report(struct demo *d, char *line, size_t len)
{
    int waited = 0;
    for (;;) {
        char *nl = memchr(d->rbuf, '\n', d->rlen);
        if (nl != NULL) {
            size_t n = (size_t)(nl - d->rbuf) + 1;
            snprintf(line, len, "%.*s", (int)n - 1, d->rbuf);
            memmove(d->rbuf, d->rbuf + n, d->rlen - n);
            d->rlen -= n;
            return 0;
        }
        struct pollfd pfd = {.fd = d->report_fd, .events = POLLIN};
        int rc = poll(&pfd, 1, 1000);
        if (rc < 0 && errno != EINTR)
            return -errno;
        if (rc <= 0) {
            if (consumer_died(d))
                return -EPIPE;
            if ((waited += 1000) >= DEMO_STALL_MS)
                return -ETIMEDOUT;
            continue;
        }
        ssize_t n = read(d->report_fd, d->rbuf + d->rlen,
                         sizeof d->rbuf - d->rlen);
        if (n <= 0)
            return n == 0 ? -EPIPE : -errno;
        d->rlen += (size_t)n;
    }
}
