/* SPDX-License-Identifier: MIT */
/*
 * pool.c - mempool.PoolBase, the native half of mempool.Pool: opening,
 * closing, reopening after fork, and every object operation except put and
 * reservations (put.c, reserve.c).
 *
 * The handle lives in an MpyConn shared with every Buffer pinned through
 * it; close() drops the pool's reference, so the handle closes (and its
 * slot is given up) when the last array or buffer from it is collected:
 * never under live memory. In a child after fork() the first call opens a
 * new handle with the same options (the parent's is never used).
 *
 * Long calls (open, put/get of big objects, spills, waits) run without the
 * GIL.
 */
#include "mpy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static MpyConn *conn_open(PyObject *pyname, const mempool_options *o,
                          int release_gil)
{
    const char *name = mpy_cstr(pyname);
    mempool *h = NULL;
    MpyConn *c;
    int rc;

    if (!name)
        return NULL;
    if (release_gil) {
        Py_BEGIN_ALLOW_THREADS
        rc = mempool_open(name, o, &h);
        Py_END_ALLOW_THREADS
    } else {
        rc = mempool_open(name, o, &h);
    }
    if (rc < 0)
        return (MpyConn *)mpy_raise(rc, name);
    c = PyObject_New(MpyConn, &MpyConn_Type);
    if (!c) {
        mempool_close(h);
        return NULL;
    }
    c->h = h;
    c->gen = mpy_fork_gen;
    c->name = Py_NewRef(pyname);
    return c;
}

/* The pool's live handle, reopened first if this is a forked child. */
MpyConn *mpy_pool_conn(MpyPool *self)
{
    MpyConn *c;
    mempool_options o;

    if (!self->conn) {
        PyErr_SetString(PyExc_ValueError, "the mempool.Pool is closed");
        return NULL;
    }
    if (self->conn->gen == mpy_fork_gen)
        return self->conn;
    /* A forked child: attach as ourselves, never creating a pool the parent
     * destroyed meanwhile... unless the caller asked to create. The GIL is
     * kept so that two threads cannot both reopen. */
    o = self->opts;
    c = conn_open(self->name, &o, 0);
    if (!c)
        return NULL;
    Py_SETREF(self->conn, c);
    return c;
}

/* The handle for a call that keeps the GIL from here to its end (so no
 * other thread can close the pool under it). */
mempool *mpy_pool_handle(MpyPool *self)
{
    MpyConn *c = mpy_pool_conn(self);

    return c ? c->h : NULL;
}

/* For a call that releases the GIL: pool.close() in another thread only
 * drops the pool's reference, the handle closes when the call drops this
 * one (the library forbids closing a handle under a call: SIGSEGV). */
MpyConn *mpy_pool_hold(MpyPool *self)
{
    MpyConn *c = mpy_pool_conn(self);

    return c ? (MpyConn *)Py_NewRef(c) : NULL;
}

static int pool_init(MpyPool *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "create", "arena_bytes", "spill_dir",
                             "max_memsize", "mode", "max_objects", "max_refs",
                             NULL};
    PyObject *name, *arena = Py_None, *spill = Py_None, *maxm = Py_None,
                    *mode = Py_None, *spill_b = NULL, *maxo = Py_None,
                    *maxr = Py_None;
    int create = 1;
    mempool_options o;
    MpyConn *c;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "U|pOOOOOO:Pool", kwlist, &name,
                                     &create, &arena, &spill, &maxm, &mode,
                                     &maxo, &maxr))
        return -1;
    if (self->conn) {
        PyErr_SetString(PyExc_RuntimeError, "Pool is already open");
        return -1;
    }
    mempool_options_init(&o);
    o.flags = create ? MEMPOOL_OPEN_CREATE : 0;
    if (arena != Py_None &&
        (o.arena_bytes = PyLong_AsUnsignedLongLong(arena)) == (uint64_t)-1 &&
        PyErr_Occurred())
        return -1;
    if (maxm != Py_None &&
        (o.max_memsize = PyLong_AsUnsignedLongLong(maxm)) == (uint64_t)-1 &&
        PyErr_Occurred())
        return -1;
    if (maxo != Py_None &&
        (o.max_objects = PyLong_AsUnsignedLongLong(maxo)) == (uint64_t)-1 &&
        PyErr_Occurred())
        return -1;
    if (maxr != Py_None &&
        (o.max_refs = PyLong_AsUnsignedLongLong(maxr)) == (uint64_t)-1 &&
        PyErr_Occurred())
        return -1;
    if (mode != Py_None) {
        unsigned long m = PyLong_AsUnsignedLong(mode);
        if (m == (unsigned long)-1 && PyErr_Occurred())
            return -1;
        o.mode = (uint32_t)m;
    }
    free(self->spill_dir);
    self->spill_dir = NULL;
    if (spill != Py_None) {
        if (!PyUnicode_FSConverter(spill, &spill_b))
            return -1;
        self->spill_dir = strdup(PyBytes_AS_STRING(spill_b));
        Py_DECREF(spill_b);
        if (!self->spill_dir) {
            PyErr_NoMemory();
            return -1;
        }
        o.spill_dir = self->spill_dir;
    }
    c = conn_open(name, &o, 1);
    if (!c)
        return -1;
    /* A reopen after fork attaches; it must not re-create a pool that was
     * destroyed, and never with EXCL. */
    o.flags &= ~MEMPOOL_OPEN_EXCL;
    self->opts = o;
    Py_XSETREF(self->name, Py_NewRef(name));
    self->conn = c;
    return 0;
}

static void pool_dealloc(MpyPool *self)
{
    if (self->weaklist)
        PyObject_ClearWeakRefs((PyObject *)self);
    Py_CLEAR(self->conn);
    Py_CLEAR(self->name);
    free(self->spill_dir);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *pool_close(MpyPool *self, PyObject *unused)
{
    (void)unused;
    Py_CLEAR(self->conn);
    Py_RETURN_NONE;
}

static PyObject *pool_enter(MpyPool *self, PyObject *unused)
{
    (void)unused;
    if (!mpy_pool_conn(self))
        return NULL;
    return Py_NewRef(self);
}

static PyObject *pool_exit(MpyPool *self, PyObject *args)
{
    (void)args;
    return pool_close(self, NULL);
}

static PyObject *pool_repr(MpyPool *self)
{
    if (!self->conn)
        return PyUnicode_FromFormat("<mempool.Pool %R closed>", self->name);
    return PyUnicode_FromFormat("<mempool.Pool %R worker=%d>", self->name,
                                self->conn->gen == mpy_fork_gen
                                    ? mempool_worker_id(self->conn->h)
                                    : 0);
}

/* ---- get ---------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Pin @p r through @p c into a new Buffer; with @p timeout >= 0, wait
 * that long for an object that is not there yet (polling every ms). */
static MpyBuffer *pin_poll(MpyConn *c, mempool_dref r, double timeout)
{
    mempool_view v;
    MpyBuffer *b;
    double end = timeout > 0 ? now_s() + timeout : 0;
    int rc;

    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        rc = mempool_get(c->h, r, &v);
        Py_END_ALLOW_THREADS
        if (rc != -ENOENT || timeout <= 0 || now_s() >= end)
            break;
        Py_BEGIN_ALLOW_THREADS
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        Py_END_ALLOW_THREADS
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
    if (rc < 0)
        return (MpyBuffer *)mpy_raise(rc, NULL);
    b = mpy_buffer_new(c, &v, r);
    if (!b)
        mempool_release(c->h, &v);
    return b;
}

/* Pin @p r into a new Buffer, waiting up to @p timeout s (if > 0) for an
 * object that is not there yet. */
static MpyBuffer *pin(MpyPool *self, mempool_dref r, double timeout)
{
    MpyConn *c = mpy_pool_hold(self);
    MpyBuffer *b;

    if (!c)
        return NULL;
#if MPY_HAVE_HANDOFF
    if (timeout > 0)
        b = mpy_pin_wait(self, c, r, timeout);
    else
#endif
        b = pin_poll(c, r, timeout);
    Py_DECREF(c);
    return b;
}

static int parse_ref_timeout(PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames, const char *fn,
                             mempool_dref *r, double *timeout)
{
    PyObject *ref = nargs > 0 ? args[0] : NULL, *to = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;

    *timeout = 0;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 2 arguments", fn);
        return -1;
    }
    if (nargs == 2)
        to = args[1];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        const char *k = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
        if (!k)
            return -1;
        if (!strcmp(k, "timeout") && !to)
            to = args[nargs + i];
        else if (!strcmp(k, "ref") && !ref)
            ref = args[nargs + i];
        else {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword "
                         "argument '%s'", fn, k);
            return -1;
        }
    }
    if (!ref) {
        PyErr_Format(PyExc_TypeError, "%s() missing argument 'ref'", fn);
        return -1;
    }
    if (to && to != Py_None) {
        *timeout = PyFloat_AsDouble(to);
        if (*timeout == -1.0 && PyErr_Occurred())
            return -1;
    }
    return mpy_dref_arg(ref, r);
}

static PyObject *pool_get(MpyPool *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames)
{
    mempool_dref r;
    double timeout;
    MpyBuffer *b;

    if (nargs == 1 && !kwnames && Py_IS_TYPE(args[0], &MpyDRef_Type)) {
        r = ((MpyDRef *)args[0])->r;
        timeout = 0;
    } else if (parse_ref_timeout(args, nargs, kwnames, "get", &r,
                                 &timeout) < 0) {
        return NULL;
    }
    if (!(b = pin(self, r, timeout)))
        return NULL;
    return mpy_wrap(b);
}

static PyObject *pool_view(MpyPool *self, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    mempool_dref r;
    double timeout;

    if (parse_ref_timeout(args, nargs, kwnames, "view", &r, &timeout) < 0)
        return NULL;
    return (PyObject *)pin(self, r, timeout);
}

/* The hop of mempool.dumps()/install() before reference handoff exists:
 * pin the object, then delete it, so it is freed when the last loaded
 * array goes (even if the producer is gone) and a second load fails. */
static PyObject *pool_get_consume(MpyPool *self, PyObject *ref)
{
    mempool_dref r;
    MpyBuffer *b;
    int rc;

    if (mpy_dref_arg(ref, &r) < 0 || !(b = pin(self, r, 0)))
        return NULL;
    rc = mempool_delete(b->conn->h, r);
    if (rc < 0 && rc != -ENOENT) {
        Py_DECREF(b);
        return mpy_raise(rc, NULL);
    }
    return mpy_wrap(b);
}

/* ---- object calls taking one DRef ---------------------------------------- */

typedef int (*ref_fn)(mempool *, mempool_dref);

static PyObject *ref_call(MpyPool *self, PyObject *ref, ref_fn fn)
{
    mempool_dref r;
    MpyConn *c;
    int rc;

    if (mpy_dref_arg(ref, &r) < 0 || !(c = mpy_pool_hold(self)))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = fn(c->h, r);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    if (rc < 0)
        return mpy_raise(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *pool_delete(MpyPool *s, PyObject *r)
{
    return ref_call(s, r, mempool_delete);
}

static PyObject *pool_ref(MpyPool *s, PyObject *r)
{
    return ref_call(s, r, mempool_ref);
}

static PyObject *pool_unref(MpyPool *s, PyObject *r)
{
    return ref_call(s, r, mempool_unref);
}

static const char *type_name(uint32_t t)
{
    switch (t) {
    case MEMPOOL_TYPE_BYTES: return "bytes";
    case MEMPOOL_TYPE_ARRAY: return "array";
    case MEMPOOL_TYPE_STRINGS: return "strings";
    case MEMPOOL_TYPE_TABLE: return "table";
    default: return "user";
    }
}

static PyObject *pool_share(MpyPool *self, PyObject *ref)
{
    mempool_dref r;
    uint64_t bytes;
    mempool *h;
    int rc;

    if (mpy_dref_arg(ref, &r) < 0 || !(h = mpy_pool_handle(self)))
        return NULL;
    if ((rc = mempool_share_get(h, r, &bytes)) < 0)
        return mpy_raise(rc, NULL);
    return PyLong_FromUnsignedLongLong(bytes);
}

static PyObject *pool_info(MpyPool *self, PyObject *ref)
{
    mempool_dref r;
    mempool_info i;
    mempool *h;
    int rc;

    if (mpy_dref_arg(ref, &r) < 0 || !(h = mpy_pool_handle(self)))
        return NULL;
    if ((rc = mempool_info_get(h, r, &i)) < 0)
        return mpy_raise(rc, NULL);
    return Py_BuildValue(
        "{sKsisIsssOsOsIsI}", "len", (unsigned long long)i.len, "owner",
        i.owner, "type", i.type, "type_name", type_name(i.type), "in_memory",
        (i.state & MEMPOOL_STATE_MEMORY) ? Py_True : Py_False, "on_disk",
        (i.state & MEMPOOL_STATE_DISK) ? Py_True : Py_False, "pins", i.pins,
        "refs", i.refs);
}

/* ---- disk ---------------------------------------------------------------- */

static PyObject *fileref_new(const mempool_fileref *f)
{
    PyObject *path = PyUnicode_DecodeFSDefault(f->path), *res;

    if (!path)
        return NULL;
    if (!mpy_fileref_class)
        res = Py_BuildValue("(NK)", path, (unsigned long long)f->len);
    else
        res = PyObject_CallFunction(mpy_fileref_class, "NK", path,
                                    (unsigned long long)f->len);
    return res;
}

typedef int (*disk_fn)(mempool *, mempool_dref, mempool_fileref *);

static PyObject *disk_call(MpyPool *self, PyObject *ref, disk_fn fn)
{
    mempool_fileref *f;
    mempool_dref r;
    MpyConn *c;
    PyObject *res;
    int rc;

    if (mpy_dref_arg(ref, &r) < 0 || !(c = mpy_pool_hold(self)))
        return NULL;
    if (!(f = PyMem_RawMalloc(sizeof *f))) {
        Py_DECREF(c);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    rc = fn(c->h, r, f);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    res = rc < 0 ? mpy_raise(rc, NULL) : fileref_new(f);
    PyMem_RawFree(f);
    return res;
}

static PyObject *pool_move_to_disk(MpyPool *s, PyObject *r)
{
    return disk_call(s, r, mempool_move_to_disk);
}

static PyObject *pool_copy_to_disk(MpyPool *s, PyObject *r)
{
    return disk_call(s, r, mempool_copy_to_disk);
}

static PyObject *pool_save_to_disk(MpyPool *self, PyObject *args)
{
    PyObject *ref, *path_b = NULL, *res;
    mempool_fileref *f = NULL;
    mempool_dref r;
    MpyConn *c = NULL;
    int rc;

    if (!PyArg_ParseTuple(args, "OO&:save_to_disk", &ref,
                          PyUnicode_FSConverter, &path_b))
        return NULL;
    if (mpy_dref_arg(ref, &r) < 0 || !(c = mpy_pool_hold(self)) ||
        !(f = PyMem_RawMalloc(sizeof *f))) {
        Py_XDECREF(c);
        Py_DECREF(path_b);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_save_to_disk(c->h, r, PyBytes_AS_STRING(path_b), f);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    res = rc < 0 ? mpy_raise(rc, PyBytes_AS_STRING(path_b)) : fileref_new(f);
    PyMem_RawFree(f);
    Py_DECREF(path_b);
    return res;
}

static PyObject *pool_get_file(MpyPool *self, PyObject *fref)
{
    PyObject *path, *path_b = NULL, *len;
    mempool_fileref *f;
    mempool_view v;
    MpyConn *c;
    MpyBuffer *b;
    int rc;

    if (!mpy_pool_conn(self))
        return NULL;
    if (PyTuple_Check(fref) && PyTuple_GET_SIZE(fref) == 2) {
        path = PyTuple_GET_ITEM(fref, 0);
        len = PyTuple_GET_ITEM(fref, 1);
    } else {
        PyErr_SetString(PyExc_TypeError, "get_file() takes a FileRef");
        return NULL;
    }
    if (!PyUnicode_FSConverter(path, &path_b))
        return NULL;
    if (!(f = PyMem_RawCalloc(1, sizeof *f))) {
        Py_DECREF(path_b);
        return PyErr_NoMemory();
    }
    f->len = PyLong_AsUnsignedLongLong(len);
    if (PyErr_Occurred() ||
        (size_t)PyBytes_GET_SIZE(path_b) >= sizeof f->path) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "path too long");
        PyMem_RawFree(f);
        Py_DECREF(path_b);
        return NULL;
    }
    memcpy(f->path, PyBytes_AS_STRING(path_b),
           (size_t)PyBytes_GET_SIZE(path_b));
    if (!(c = mpy_pool_hold(self))) { /* closed while converting path */
        PyMem_RawFree(f);
        Py_DECREF(path_b);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_get_file(c->h, f, &v);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(f);
    if (rc < 0) {
        mpy_raise(rc, PyBytes_AS_STRING(path_b));
        Py_DECREF(path_b);
        Py_DECREF(c);
        return NULL;
    }
    Py_DECREF(path_b);
    b = mpy_buffer_new(c, &v, (mempool_dref){0, 0});
    if (!b)
        mempool_release(c->h, &v);
    Py_DECREF(c);
    return b ? mpy_wrap(b) : NULL;
}

/* A call taking only the handle, run without the GIL; its count (>= 0) as
 * an int, or None when @p none. */
static PyObject *handle_call(MpyPool *self, int (*fn)(mempool *), int none)
{
    MpyConn *c = mpy_pool_hold(self);
    int rc;

    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = fn(c->h);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    if (rc < 0)
        return mpy_raise(rc, NULL);
    if (none)
        Py_RETURN_NONE;
    return PyLong_FromLong(rc);
}

static PyObject *pool_flush(MpyPool *self, PyObject *unused)
{
    (void)unused;
    return handle_call(self, mempool_flush, 1);
}

/* ---- figures and maintenance --------------------------------------------- */

static PyObject *pool_stats(MpyPool *self, PyObject *unused)
{
    MpyConn *c = mpy_pool_hold(self);
    PyObject *json, *res;
    char *doc = NULL;
    int rc;

    (void)unused;
    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_stats_json(c->h, &doc);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    if (rc < 0)
        return mpy_raise(rc, NULL);
    json = PyImport_ImportModule("json");
    res = json ? PyObject_CallMethod(json, "loads", "s", doc) : NULL;
    Py_XDECREF(json);
    free(doc);
    return res;
}

static PyObject *pool_check(MpyPool *self, PyObject *unused)
{
    MpyConn *c = mpy_pool_hold(self);
    char why[512] = "";
    int rc;

    (void)unused;
    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_check(c->h, why, sizeof why);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    if (rc < 0)
        return mpy_raise(rc, why[0] ? why : NULL);
    Py_RETURN_NONE;
}

static PyObject *pool_reap(MpyPool *self, PyObject *unused)
{
    (void)unused;
    return handle_call(self, mempool_reap, 0);
}

static PyObject *pool_trim(MpyPool *self, PyObject *unused)
{
    MpyConn *c = mpy_pool_hold(self);
    int64_t rc;

    (void)unused;
    if (!c)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_trim(c->h);
    Py_END_ALLOW_THREADS
    Py_DECREF(c);
    if (rc < 0)
        return mpy_raise((int)rc, NULL);
    return PyLong_FromLongLong(rc);
}

static PyObject *pool_get_name(MpyPool *self, void *c)
{
    (void)c;
    return Py_NewRef(self->name ? self->name : Py_None);
}

static PyObject *pool_get_closed(MpyPool *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->conn == NULL);
}

static PyObject *pool_get_worker_id(MpyPool *self, void *c)
{
    mempool *h = mpy_pool_handle(self);
    int id;

    (void)c;
    if (!h)
        return NULL;
    if ((id = mempool_worker_id(h)) < 0)
        return mpy_raise(id, NULL);
    return PyLong_FromLong(id);
}

static PyObject *pool_get_max_memsize(MpyPool *self, void *c)
{
    struct mempool_worker_stats ws;
    mempool *h = mpy_pool_handle(self);
    int rc;

    (void)c;
    if (!h)
        return NULL;
    if ((rc = mempool_worker_stats_get(h, mempool_worker_id(h), &ws)) < 0)
        return mpy_raise(rc, NULL);
    return PyLong_FromUnsignedLongLong(ws.max_memsize);
}

static int pool_set_max_memsize(MpyPool *self, PyObject *v, void *c)
{
    mempool *h;
    uint64_t n = 0;
    int rc;

    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete max_memsize");
        return -1;
    }
    if (v != Py_None && (n = PyLong_AsUnsignedLongLong(v)) == (uint64_t)-1 &&
        PyErr_Occurred())
        return -1;
    if (!(h = mpy_pool_handle(self)))
        return -1;
    if ((rc = mempool_limit_set(h, MEMPOOL_LIMIT_MEMSIZE, n)) < 0) {
        mpy_raise(rc, NULL);
        return -1;
    }
    /* A reopen after fork keeps the limit. */
    self->opts.max_memsize = n;
    return 0;
}

static PyGetSetDef pool_getset[] = {
    {"name", (getter)pool_get_name, NULL, "the pool's name", NULL},
    {"closed", (getter)pool_get_closed, NULL, "close() was called", NULL},
    {"worker_id", (getter)pool_get_worker_id, NULL,
     "this process's worker number (1..64)", NULL},
    {"max_memsize", (getter)pool_get_max_memsize,
     (setter)pool_set_max_memsize,
     "this worker's resident limit in bytes (0 = none); objects beyond it "
     "spill to disk",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef pool_methods[] = {
    {"close", (PyCFunction)pool_close, METH_NOARGS,
     "close()\n--\n\nDrop this pool's handle. Arrays and buffers still "
     "alive keep it open until they are collected; objects stay."},
    {"__enter__", (PyCFunction)pool_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)pool_exit, METH_VARARGS, NULL},
    {"put", (PyCFunction)(void (*)(void))mpy_pool_put,
     METH_VARARGS | METH_KEYWORDS,
     "put(obj, refcounted=False)\n--\n\nStore *obj* as a new immutable "
     "object and return its DRef."},
    {"_put_strings", (PyCFunction)(void (*)(void))mpy_pool_put_strings,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"_put_table", (PyCFunction)(void (*)(void))mpy_pool_put_table,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"get", (PyCFunction)(void (*)(void))pool_get,
     METH_FASTCALL | METH_KEYWORDS,
     "get(ref, timeout=None)\n--\n\nThe object, zero-copy: a read-only "
     "Buffer (bytes), ndarray (array), Strings or Table. With a timeout, "
     "wait that many seconds for an object that is not there yet."},
    {"view", (PyCFunction)(void (*)(void))pool_view,
     METH_FASTCALL | METH_KEYWORDS,
     "view(ref, timeout=None)\n--\n\nThe raw bytes of any object as a "
     "Buffer; use it in a with-block to release the pin deterministically."},
    {"_get_consume", (PyCFunction)pool_get_consume, METH_O, NULL},
#if MPY_HAVE_HANDOFF
    {"_name_put", (PyCFunction)mpy_pool_name_put, METH_VARARGS, NULL},
    {"_name_get", (PyCFunction)mpy_pool_name_get, METH_VARARGS, NULL},
    {"_name_drop", (PyCFunction)mpy_pool_name_drop, METH_O, NULL},
    {"_name_list", (PyCFunction)mpy_pool_name_list, METH_NOARGS, NULL},
    {"give", (PyCFunction)(void (*)(void))mpy_pool_give,
     METH_VARARGS | METH_KEYWORDS,
     "give(ref, ttl=None)\n--\n\nMove one of this worker's references of a "
     "refcounted object into flight: no process holds it until one take()s "
     "it; dropped after *ttl* seconds if nobody does (None: never)."},
    {"take", (PyCFunction)mpy_pool_take, METH_O,
     "take(ref)\n--\n\nMove one in-flight reference of *ref* to this "
     "worker (unref() it when done)."},
    {"_take_pinned", (PyCFunction)mpy_pool_take_pinned, METH_O, NULL},
    {"channel", (PyCFunction)(void (*)(void))mpy_pool_channel,
     METH_VARARGS | METH_KEYWORDS,
     "channel(name, capacity=64, broadcast=False, create=True)\n--\n\nOpen "
     "(or create) the named channel of DRefs: a mempool.Channel."},
#endif
    {"delete", (PyCFunction)pool_delete, METH_O,
     "delete(ref)\n--\n\nDelete the object; pinned memory is freed at the "
     "last release."},
    {"ref", (PyCFunction)pool_ref, METH_O,
     "ref(ref)\n--\n\nAdd a reference to a refcounted object."},
    {"unref", (PyCFunction)pool_unref, METH_O,
     "unref(ref)\n--\n\nDrop one of this worker's references; the last one "
     "deletes the object."},
    {"info", (PyCFunction)pool_info, METH_O,
     "info(ref)\n--\n\nA dict describing the object: len, owner, type, "
     "type_name, in_memory, on_disk, pins, refs."},
    {"share", (PyCFunction)pool_share, METH_O,
     "share(ref)\n--\n\nThis worker's share of a refcounted object's bytes: "
     "len x its references / all references; the shares of all holders add "
     "up to exactly len."},
    {"move_to_disk", (PyCFunction)pool_move_to_disk, METH_O,
     "move_to_disk(ref)\n--\n\nWrite the object to its spill file and free "
     "its memory. Returns a FileRef."},
    {"copy_to_disk", (PyCFunction)pool_copy_to_disk, METH_O,
     "copy_to_disk(ref)\n--\n\nWrite the spill file, keep the memory. "
     "Returns a FileRef."},
    {"save_to_disk", (PyCFunction)pool_save_to_disk, METH_VARARGS,
     "save_to_disk(ref, path)\n--\n\nWrite the object durably to *path*. "
     "Returns a FileRef."},
    {"get_file", (PyCFunction)pool_get_file, METH_O,
     "get_file(fileref)\n--\n\nMap a file written by move/copy/save_to_disk "
     "and return its object as get() would (zero-copy, read-only)."},
    {"flush", (PyCFunction)pool_flush, METH_NOARGS,
     "flush()\n--\n\nWait for every spill this process queued."},
    {"stats", (PyCFunction)pool_stats, METH_NOARGS,
     "stats()\n--\n\nThe pool's figures: the stats JSON document as a dict."},
    {"check", (PyCFunction)pool_check, METH_NOARGS,
     "check()\n--\n\nVerify the pool's invariants (fsck); raises Corrupt "
     "with the reason."},
    {"reap", (PyCFunction)pool_reap, METH_NOARGS,
     "reap()\n--\n\nReap dead workers now; returns how many."},
    {"trim", (PyCFunction)pool_trim, METH_NOARGS,
     "trim()\n--\n\nReturn free pages to the kernel; returns bytes."},
    {"reserve", (PyCFunction)(void (*)(void))mpy_pool_reserve,
     METH_VARARGS | METH_KEYWORDS,
     "reserve(nbytes)\n--\n\nA writable Reservation of *nbytes* in the "
     "arena; published at the end of a with-block, aborted on exception."},
    {"empty", (PyCFunction)(void (*)(void))mpy_pool_empty,
     METH_VARARGS | METH_KEYWORDS,
     "empty(shape, dtype=float, order='C')\n--\n\nA Reservation whose "
     ".array is a writable ndarray straight in the arena."},
    {NULL, NULL, 0, NULL}};

static PyObject *pool_new(PyTypeObject *t, PyObject *a, PyObject *k)
{
    MpyPool *self = (MpyPool *)t->tp_alloc(t, 0);

    (void)a;
    (void)k;
    return (PyObject *)self;
}

PyTypeObject MpyPool_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mempool.PoolBase",
    .tp_basicsize = sizeof(MpyPool),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "PoolBase(name, create=True, arena_bytes=None, spill_dir=None, "
              "max_memsize=None, mode=None, max_objects=None, "
              "max_refs=None)\n--\n\nThe native part of mempool.Pool.",
    .tp_new = pool_new,
    .tp_init = (initproc)pool_init,
    .tp_dealloc = (destructor)pool_dealloc,
    .tp_repr = (reprfunc)pool_repr,
    .tp_methods = pool_methods,
    .tp_getset = pool_getset,
    .tp_weaklistoffset = offsetof(MpyPool, weaklist),
};
