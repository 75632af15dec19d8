/* SPDX-License-Identifier: MIT */
/*
 * handoff.c - the C library's handoff primitives for Python, when the
 * library has them (MEMPOOL_CHAN_CREATE defined by <mempool/mempool.h>):
 * get with a wait for publication, the name directory, references in
 * flight (give/take) and channels (mempool.Channel).
 *
 * Every wait runs without the GIL in slices of WAIT_SLICE_MS, checking
 * for signals between slices, so Ctrl-C interrupts a wait "forever".
 * A timeout that passes raises the builtin TimeoutError. The calls without
 * a timeout (give, take, names[n], del names[n], destroy) run without the
 * GIL too: each may wait up to MEMPOOL_PEER_WAIT_MS (5 s) for a lock a
 * stopped peer holds, and the process's other threads must run meanwhile.
 *
 * Another thread may close the pool or the channel while a thread waits
 * on it (a consumer thread's shutdown). The library forbids freeing a
 * handle under a call, so a wait holds a reference to the pool's handle
 * (MpyConn) and a channel counts its calls in flight (busy): close()
 * then only marks it closed, the last call to leave frees the handle, and
 * each waiter sees the close between two slices and raises ValueError.
 */
#include "mpy.h"

#ifdef MEMPOOL_CHAN_CREATE

#include <errno.h>
#include <string.h>
#include <time.h>

#define WAIT_SLICE_MS 200

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds (None = forever) as an absolute deadline; < 0 forever. */
static int deadline_of(PyObject *timeout, double *end)
{
    double t;

    if (!timeout || timeout == Py_None) {
        *end = -1;
        return 0;
    }
    t = PyFloat_AsDouble(timeout);
    if (t == -1.0 && PyErr_Occurred())
        return -1;
    *end = mono_s() + (t > 0 ? t : 0);
    return 0;
}

/* The next slice to wait, in ms: 0 when the deadline has passed. */
static int64_t slice_ms(double end)
{
    double left;

    if (end < 0)
        return WAIT_SLICE_MS;
    left = (end - mono_s()) * 1e3;
    if (left <= 0)
        return 0;
    return left < WAIT_SLICE_MS ? (int64_t)left + 1 : WAIT_SLICE_MS;
}

static PyObject *timeout_error(const char *what)
{
    PyErr_Format(PyExc_TimeoutError, "%s: timed out", what);
    return NULL;
}

static PyObject *fail(int rc, const char *what)
{
    if (rc == -EINTR && PyErr_Occurred())
        return NULL;
    if (rc == -ETIMEDOUT)
        return timeout_error(what);
    return mpy_raise(rc, what);
}

typedef int (*wait_fn)(void *ctx, int64_t ms);
/* Nonzero (with an exception set) once the waiter's pool or channel was
 * closed by another thread. */
typedef int (*closed_fn)(void *owner);

/* Call @p fn in slices until it does not time out or @p end passes.
 * Returns its result; -EINTR with an exception set on a signal or when
 * @p closed says the owner was closed meanwhile. */
static int sliced(wait_fn fn, void *ctx, double end, closed_fn closed,
                  void *owner)
{
    int rc;

    for (;;) {
        int64_t ms = slice_ms(end);
        Py_BEGIN_ALLOW_THREADS
        rc = fn(ctx, ms);
        Py_END_ALLOW_THREADS
        if (rc != -ETIMEDOUT || ms == 0 || (end >= 0 && mono_s() >= end))
            return rc;
        if (PyErr_CheckSignals() < 0 || closed(owner))
            return -EINTR;
    }
}

/* A wait on a pool's handle. */
struct pool_wait { MpyPool *pool; MpyConn *c; };

/* The pool was closed (or reopened after fork) when its handle is no
 * longer the one the wait runs on. */
static int pool_closed(void *owner)
{
    struct pool_wait *w = owner;

    if (w->pool->conn == w->c)
        return 0;
    PyErr_SetString(PyExc_ValueError, "the mempool.Pool is closed");
    return 1;
}

/* A wait on @p pool's handle @p c, which it keeps open across the wait
 * (pool.close() in another thread only drops the pool's reference). */
static int pool_sliced(MpyPool *pool, MpyConn *c, wait_fn fn, void *ctx,
                       double end)
{
    struct pool_wait w = {pool, c};
    int rc;

    Py_INCREF(c);
    rc = sliced(fn, ctx, end, pool_closed, &w);
    Py_DECREF(c);
    return rc;
}

/* ---- get with a wait ------------------------------------------------------ */

struct getw { mempool *h; mempool_dref r; mempool_view v; };

static int getw_call(void *ctx, int64_t ms)
{
    struct getw *g = ctx;

    return mempool_get_wait(g->h, g->r, &g->v, ms);
}

MpyBuffer *mpy_pin_wait(MpyPool *pool, MpyConn *c, mempool_dref r,
                        double timeout_s)
{
    struct getw g = {c->h, r, {0}};
    MpyBuffer *b = NULL;
    int rc;

    Py_INCREF(c); /* until the Buffer holds it */
    rc = pool_sliced(pool, c, getw_call, &g, mono_s() + timeout_s);
    if (rc < 0)
        fail(rc, "get");
    else if (!(b = mpy_buffer_new(c, &g.v, r)))
        mempool_release(c->h, &g.v);
    Py_DECREF(c);
    return b;
}

/* ---- names ---------------------------------------------------------------- */

static int name_arg(PyObject *o, PyObject **bytes)
{
    if (PyUnicode_Check(o))
        *bytes = PyUnicode_AsEncodedString(o, "utf-8", "surrogateescape");
    else if (PyBytes_Check(o))
        *bytes = Py_NewRef(o);
    else {
        PyErr_SetString(PyExc_TypeError, "names are str or bytes");
        return -1;
    }
    if (!*bytes)
        return -1;
    /* The C calls take it NUL-terminated: a NUL would cut the name. */
    if (strlen(PyBytes_AS_STRING(*bytes)) !=
        (size_t)PyBytes_GET_SIZE(*bytes)) {
        Py_CLEAR(*bytes);
        PyErr_SetString(PyExc_ValueError, "embedded null character");
        return -1;
    }
    return 0;
}

PyObject *mpy_pool_name_put(MpyPool *self, PyObject *args)
{
    PyObject *name, *ref, *nb;
    int replace = 0, rc;
    mempool_dref r;
    MpyConn *c;

    if (!PyArg_ParseTuple(args, "OO|p:_name_put", &name, &ref, &replace) ||
        mpy_dref_arg(ref, &r) < 0 || name_arg(name, &nb) < 0)
        return NULL;
    if (!(c = mpy_pool_hold(self))) {
        Py_DECREF(nb);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_name_put(c->h, PyBytes_AS_STRING(nb), r,
                          replace ? MEMPOOL_NAME_REPLACE : 0);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    Py_DECREF(nb);
    if (rc < 0)
        return rc == -EEXIST ? (PyErr_Format(PyExc_KeyError,
                                             "name %R is bound", name),
                                NULL)
                             : mpy_raise(rc, NULL);
    Py_RETURN_NONE;
}

struct nameg { mempool *h; const char *name; mempool_dref r; };

static int nameg_call(void *ctx, int64_t ms)
{
    struct nameg *n = ctx;

    return mempool_name_get(n->h, n->name, &n->r, ms);
}

PyObject *mpy_pool_name_get(MpyPool *self, PyObject *args)
{
    PyObject *name, *timeout = NULL, *nb;
    struct nameg n;
    MpyConn *c;
    double end;
    int rc;

    /* The handle last: float(timeout) may run Python code that closes
     * the pool (its MpyConn freed under us). */
    if (!PyArg_ParseTuple(args, "O|O:_name_get", &name, &timeout) ||
        deadline_of(timeout, &end) < 0 || name_arg(name, &nb) < 0)
        return NULL;
    if (!(c = mpy_pool_conn(self))) {
        Py_DECREF(nb);
        return NULL;
    }
    n.h = c->h;
    n.name = PyBytes_AS_STRING(nb);
    if (!timeout) {
        Py_INCREF(c);
        Py_BEGIN_ALLOW_THREADS
        rc = mempool_name_get(n.h, n.name, &n.r, 0);
        Py_END_ALLOW_THREADS
        Py_DECREF(c);
    } else {
        rc = pool_sliced(self, c, nameg_call, &n, end);
    }
    Py_DECREF(nb);
    if (rc == -ETIMEDOUT && !timeout) {
        PyErr_SetObject(PyExc_KeyError, name);
        return NULL;
    }
    if (rc < 0)
        return fail(rc, "names.wait");
    return mpy_dref_new(n.r);
}

PyObject *mpy_pool_name_drop(MpyPool *self, PyObject *name)
{
    PyObject *nb;
    MpyConn *c;
    int rc;

    if (name_arg(name, &nb) < 0)
        return NULL;
    if (!(c = mpy_pool_hold(self))) {
        Py_DECREF(nb);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_name_drop(c->h, PyBytes_AS_STRING(nb));
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    Py_DECREF(nb);
    if (rc == -ENOENT) {
        PyErr_SetObject(PyExc_KeyError, name);
        return NULL;
    }
    if (rc < 0)
        return mpy_raise(rc, NULL);
    Py_RETURN_NONE;
}

static int list_one(const char *name, mempool_dref r, void *arg)
{
    PyObject *item = Py_BuildValue(
        "(NN)", PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name),
                                     "surrogateescape"),
        mpy_dref_new(r));

    if (!item || PyList_Append(arg, item) < 0) {
        Py_XDECREF(item);
        return -1;
    }
    Py_DECREF(item);
    return 0;
}

PyObject *mpy_pool_name_list(MpyPool *self, PyObject *unused)
{
    PyObject *l;
    MpyConn *c;
    int rc;

    (void)unused;
    if (!(l = PyList_New(0)))
        return NULL;
    if (!(c = mpy_pool_hold(self))) { /* list_one runs Python code */
        Py_DECREF(l);
        return NULL;
    }
    rc = mempool_name_list(c->h, list_one, l);
    Py_DECREF(c);
    if (rc != 0) {
        Py_DECREF(l);
        return rc == -1 && PyErr_Occurred() ? NULL : mpy_raise(rc, NULL);
    }
    return l;
}

/* ---- references in flight ------------------------------------------------- */

typedef int (*flight_fn)(mempool *h, mempool_dref r, int64_t ms);

static int give_call(mempool *h, mempool_dref r, int64_t ms)
{
    return mempool_ref_give(h, r, ms);
}

static int take_call(mempool *h, mempool_dref r, int64_t ms)
{
    (void)ms;
    return mempool_ref_take(h, r);
}

/* give/take without the GIL: they may wait for a stopped peer's lock. */
static PyObject *ref_call(MpyPool *self, mempool_dref r, flight_fn fn,
                          int64_t ms)
{
    MpyConn *c = mpy_pool_hold(self);
    int rc;

    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = fn(c->h, r, ms);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    if (rc < 0)
        return mpy_raise(rc, NULL);
    Py_RETURN_NONE;
}

PyObject *mpy_pool_give(MpyPool *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"ref", "ttl", NULL};
    PyObject *ref, *ttl = Py_None;
    int64_t ms = -1;
    mempool_dref r;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:give", kwlist, &ref,
                                     &ttl) ||
        mpy_dref_arg(ref, &r) < 0 || !mpy_pool_conn(self))
        return NULL;
    if (ttl != Py_None) {
        double s = PyFloat_AsDouble(ttl);
        if (s == -1.0 && PyErr_Occurred())
            return NULL;
        if (s != s) { /* NaN would become "never expires" */
            PyErr_SetString(PyExc_ValueError, "ttl is NaN");
            return NULL;
        }
        /* Past int64 ms (~292 million years, inf too): never, as None. */
        ms = s <= 0 ? 0 : s * 1e3 >= 9.2e18 ? -1 : (int64_t)(s * 1e3 + 0.5);
    }
    return ref_call(self, r, give_call, ms);
}

PyObject *mpy_pool_take(MpyPool *self, PyObject *ref)
{
    mempool_dref r;

    if (mpy_dref_arg(ref, &r) < 0)
        return NULL;
    return ref_call(self, r, take_call, 0);
}

/* Take an in-flight reference and pin the object; the returned object's
 * Buffer owns the reference and drops it with the pin. */
PyObject *mpy_pool_take_pinned(MpyPool *self, PyObject *ref)
{
    mempool_dref r;
    mempool_view v;
    MpyBuffer *b = NULL;
    MpyConn *c;
    int rc;

    if (mpy_dref_arg(ref, &r) < 0 || !(c = mpy_pool_hold(self)))
        return NULL;
    if ((rc = mempool_ref_take(c->h, r)) < 0)
        goto out;
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_get(c->h, r, &v);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        mempool_unref(c->h, r);
    } else if (!(b = mpy_buffer_new(c, &v, r))) {
        mempool_release(c->h, &v);
        mempool_unref(c->h, r);
    }
out:
    Py_DECREF(c);
    if (rc < 0)
        return mpy_raise(rc, NULL);
    if (!b)
        return NULL;
    b->ref_owned = 1;
    return mpy_wrap(b);
}

/* ---- channels ------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    MpyPool      *pool;
    MpyConn      *conn;   /* the handle c was opened on */
    mempool_chan *c;
    PyObject     *name;   /* bytes */
    uint32_t      capacity;
    unsigned      flags;
    int           busy;   /* send/recv calls in flight (under the GIL) */
    mempool_chan *orphan; /* closed while busy: freed by the last to leave */
} MpyChannel;

static int chan_open(MpyChannel *ch)
{
    MpyConn *conn = mpy_pool_hold(ch->pool);
    mempool_chan *c = NULL;
    int rc;

    if (!conn)
        return -1;
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_chan_open(conn->h, PyBytes_AS_STRING(ch->name), ch->capacity,
                           ch->flags, &c);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        Py_DECREF(conn);
        mpy_raise(rc, PyBytes_AS_STRING(ch->name));
        return -1;
    }
    if (ch->c)
        mempool_chan_close(ch->c); /* a forked child's copy */
    if (ch->orphan)
        mempool_chan_close(ch->orphan);
    ch->orphan = NULL;
    ch->busy = 0; /* a forked child: the parent's threads are not here */
    ch->c = c;
    Py_XSETREF(ch->conn, conn); /* our reference */
    return 0;
}

/* The live channel handle, reopened in a forked child. */
static mempool_chan *chan_handle(MpyChannel *ch)
{
    if (!ch->c) {
        PyErr_SetString(PyExc_ValueError, "the channel is closed");
        return NULL;
    }
    if (ch->conn->gen != mpy_fork_gen && chan_open(ch) < 0)
        return NULL;
    return ch->c;
}

PyObject *mpy_pool_channel(MpyPool *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "capacity", "broadcast", "create", NULL};
    PyObject *name;
    unsigned int capacity = 64;
    int broadcast = 0, create = 1;
    MpyChannel *ch;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|Ipp:channel", kwlist, &name,
                                     &capacity, &broadcast, &create))
        return NULL;
    ch = PyObject_New(MpyChannel, &MpyChannel_Type);
    if (!ch)
        return NULL;
    ch->pool = (MpyPool *)Py_NewRef(self);
    ch->conn = NULL;
    ch->c = NULL;
    ch->busy = 0;
    ch->orphan = NULL;
    ch->capacity = capacity;
    ch->flags = (create ? MEMPOOL_CHAN_CREATE : 0) |
                (broadcast ? MEMPOOL_CHAN_BROADCAST : 0);
    if (name_arg(name, &ch->name) < 0) {
        ch->name = NULL;
        Py_DECREF(ch);
        return NULL;
    }
    if (chan_open(ch) < 0) {
        Py_DECREF(ch);
        return NULL;
    }
    return (PyObject *)ch;
}

static void chan_dealloc(MpyChannel *ch)
{
    if (ch->c)
        mempool_chan_close(ch->c);
    if (ch->orphan)
        mempool_chan_close(ch->orphan);
    Py_CLEAR(ch->conn);
    Py_CLEAR(ch->pool);
    Py_CLEAR(ch->name);
    PyObject_Free(ch);
}

struct sendr { mempool_chan *c; mempool_dref r; };

static int send_call(void *ctx, int64_t ms)
{
    struct sendr *s = ctx;

    return mempool_chan_send(s->c, s->r, ms);
}

static int recv_call(void *ctx, int64_t ms)
{
    struct sendr *s = ctx;

    return mempool_chan_recv(s->c, &s->r, ms);
}

/* A channel wait on handle @p owner's c: closed when close() took it. */
struct chan_wait { MpyChannel *ch; mempool_chan *c; };

static int chan_closed(void *owner)
{
    struct chan_wait *w = owner;

    if (w->ch->c == w->c)
        return 0;
    PyErr_SetString(PyExc_ValueError, "the channel is closed");
    return 1;
}

/* A wait on the channel's handle @p c, counted in busy so that a close()
 * meanwhile leaves the freeing to the last call to leave. */
static int chan_sliced(MpyChannel *ch, mempool_chan *c, wait_fn fn,
                       void *ctx, double end)
{
    struct chan_wait w = {ch, c};
    int rc;

    ch->busy++;
    rc = sliced(fn, ctx, end, chan_closed, &w);
    if (--ch->busy == 0 && ch->orphan) {
        mempool_chan_close(ch->orphan);
        ch->orphan = NULL;
    }
    return rc;
}

static PyObject *chan_send(MpyChannel *ch, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"ref", "timeout", NULL};
    PyObject *ref, *timeout = Py_None;
    struct sendr s;
    double end;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:send", kwlist, &ref,
                                     &timeout) ||
        mpy_dref_arg(ref, &s.r) < 0 || deadline_of(timeout, &end) < 0 ||
        !(s.c = chan_handle(ch)))
        return NULL;
    if ((rc = chan_sliced(ch, s.c, send_call, &s, end)) < 0)
        return fail(rc, "send");
    Py_RETURN_NONE;
}

static PyObject *recv(MpyChannel *ch, PyObject *timeout, int iter)
{
    struct sendr s;
    double end;
    int rc;

    if (deadline_of(timeout, &end) < 0 || !(s.c = chan_handle(ch)))
        return NULL;
    rc = chan_sliced(ch, s.c, recv_call, &s, end);
    if (rc == -EPIPE && iter)
        return NULL; /* StopIteration */
    if (rc < 0)
        return fail(rc, "recv");
    return mpy_dref_new(s.r);
}

static PyObject *chan_recv(MpyChannel *ch, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:recv", kwlist, &timeout))
        return NULL;
    return recv(ch, timeout, 0);
}

static PyObject *chan_next(MpyChannel *ch)
{
    return recv(ch, Py_None, 1);
}

static PyObject *chan_close(MpyChannel *ch, PyObject *unused)
{
    (void)unused;
    if (ch->c && ch->busy)
        ch->orphan = ch->c; /* another thread is inside a call on it */
    else if (ch->c)
        mempool_chan_close(ch->c);
    ch->c = NULL;
    Py_RETURN_NONE;
}

static PyObject *chan_destroy(MpyChannel *ch, PyObject *unused)
{
    MpyConn *c = mpy_pool_hold(ch->pool);
    int rc;

    (void)unused;
    if (!c)
        return NULL;
    /* Waits up to seconds for a stopped peer's directory lock. */
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_chan_destroy(c->h, PyBytes_AS_STRING(ch->name));
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    if (rc < 0)
        return mpy_raise(rc, NULL);
    return chan_close(ch, NULL);
}

static PyObject *chan_enter(MpyChannel *ch, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(ch);
}

static PyObject *chan_exit(MpyChannel *ch, PyObject *args)
{
    (void)args;
    return chan_close(ch, NULL);
}

static PyObject *chan_repr(MpyChannel *ch)
{
    return PyUnicode_FromFormat("<mempool.Channel %R%s%s>", ch->name,
                                (ch->flags & MEMPOOL_CHAN_BROADCAST)
                                    ? " broadcast" : "",
                                ch->c ? "" : " closed");
}

static PyMethodDef chan_methods[] = {
    {"send", (PyCFunction)(void (*)(void))chan_send,
     METH_VARARGS | METH_KEYWORDS,
     "send(ref, timeout=None)\n--\n\nSend a DRef; a refcounted object's "
     "reference travels with it. Waits while a queue is full (None: "
     "forever); TimeoutError when the timeout passes."},
    {"recv", (PyCFunction)(void (*)(void))chan_recv,
     METH_VARARGS | METH_KEYWORDS,
     "recv(timeout=None)\n--\n\nThe next DRef (for a refcounted object the "
     "caller now holds a reference: unref it when done)."},
    {"close", (PyCFunction)chan_close, METH_NOARGS,
     "close()\n--\n\nFree this handle; the channel and its items stay."},
    {"destroy", (PyCFunction)chan_destroy, METH_NOARGS,
     "destroy()\n--\n\nDestroy the channel for everyone: waiters and "
     "iterations end."},
    {"__enter__", (PyCFunction)chan_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)chan_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

PyTypeObject MpyChannel_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mempool.Channel",
    .tp_basicsize = sizeof(MpyChannel),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A named channel of DRefs in the pool (pool.channel()): a "
              "bounded queue, or a broadcast where every subscriber sees "
              "every item. Iterating receives until the channel is "
              "destroyed.",
    .tp_dealloc = (destructor)chan_dealloc,
    .tp_repr = (reprfunc)chan_repr,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)chan_next,
    .tp_methods = chan_methods,
};

#endif /* MEMPOOL_CHAN_CREATE */
