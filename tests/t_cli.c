/* SPDX-License-Identifier: MIT */
/*
 * t_cli.c - see t_cli.h. The program's output is drained while it runs
 * (poll on both pipes), so a chatty program never blocks on a full pipe;
 * a program silent for T_WAIT_S is killed (status -1); its peak RSS comes
 * from wait4().
 */
#include "t_cli.h"

#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define ERR_CAP (16u << 10)

static void drain(int fd, char *buf, size_t cap, size_t *len, bool *open)
{
    char sink[4096];
    ssize_t n = *len + 1 < cap ? read(fd, buf + *len, cap - 1 - *len)
                               : read(fd, sink, sizeof sink); /* full */
    if (n > 0 && *len + 1 < cap)
        *len += (size_t)n;
    if (n == 0)
        *open = false;
    buf[*len] = '\0';
}

int t_cli_run(struct t_cli_out *r, size_t cap, const char *in,
              char *const argv[])
{
    int o[2], e[2], st = 0;
    size_t el = 0;
    bool oo = true, eo = true;
    struct rusage ru;
    double end = t_now_s() + T_WAIT_S;
    pid_t pid;

    r->out = calloc(1, cap);
    r->err = calloc(1, ERR_CAP);
    r->out_len = 0;
    ck_assert(r->out && r->err);
    t_pipe(o);
    t_pipe(e);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(in ? in : "/dev/null", O_RDONLY);
        dup2(fd, 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    while ((oo || eo) && t_now_s() < end) {
        struct pollfd pf[2] = { { oo ? o[0] : -1, POLLIN, 0 },
                                { eo ? e[0] : -1, POLLIN, 0 } };
        if (poll(pf, 2, 1000) < 0)
            break;
        if (pf[0].revents)
            drain(o[0], r->out, cap, &r->out_len, &oo);
        if (pf[1].revents)
            drain(e[0], r->err, ERR_CAP, &el, &eo);
        if (pf[0].revents || pf[1].revents)
            end = t_now_s() + T_WAIT_S;   /* a watchdog on silence only */
    }
    close(o[0]);
    close(e[0]);
    if (oo || eo)
        kill(pid, SIGKILL);
    ck_assert_int_eq(wait4(pid, &st, 0, &ru), pid);
    r->maxrss_kb = ru.ru_maxrss;
    r->status = (oo || eo) ? -1
                : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r->status;
}

void t_cli_free(struct t_cli_out *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}
