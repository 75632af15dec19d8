/* SPDX-License-Identifier: MIT */
/*
 * mpy.h - what the files of the _mempool extension share: the object
 * structs (handle, pool, DRef, pinned buffer, strings, reservation), the
 * exception types and the helpers that turn library results into Python
 * objects.
 *
 * Ownership: every object that points into pool memory (a Buffer, and
 * through its .base chain every ndarray or Strings made from it) holds a
 * reference to the MpyConn whose mapping it points into, so the arena stays
 * mapped until the last such object is gone, even after Pool.close().
 *
 * numpy is used through its C API but imported lazily (mpy_numpy()), so
 * bytes work without numpy installed.
 */
#ifndef MPY_H
#define MPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL mpy_ARRAY_API
#ifndef MPY_IMPORT_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include <mempool/mempool.h>

/* Bumped in every child after fork(): a handle made in another generation
 * belongs to the parent and is never used. */
extern unsigned long mpy_fork_gen;

/* One open handle (one worker). Shared by the pool and everything pinned
 * through it; closes when the last of them goes. */
typedef struct {
    PyObject_HEAD
    mempool      *h;
    unsigned long gen;  /* mpy_fork_gen at open */
    PyObject     *name; /* the pool's name (str) */
} MpyConn;

typedef struct {
    PyObject_HEAD
    MpyConn        *conn;       /* NULL once closed */
    PyObject       *name;       /* str */
    char           *spill_dir;  /* owned copy or NULL */
    mempool_options opts;       /* as opened; reopen after fork reuses them */
    PyObject       *weaklist;
} MpyPool;

typedef struct {
    PyObject_HEAD
    mempool_dref r;
} MpyDRef;

/* A pinned, read-only window on an object's bytes. */
typedef struct {
    PyObject_HEAD
    MpyConn     *conn;
    mempool_view v;
    mempool_dref r;       /* {0,0} for files */
    Py_ssize_t   exports; /* live buffer-protocol exports */
    int          pinned;
    int          release_asked;
    int          ref_owned; /* drop one reference with the pin (handoff) */
    PyObject    *weaklist;
} MpyBuffer;

/* A decoded STRINGS object (or a TABLE column of strings). */
typedef struct {
    PyObject_HEAD
    PyObject       *owner;  /* the MpyBuffer keeping the bytes pinned */
    mempool_strings s;
} MpyStrings;

extern PyTypeObject MpyConn_Type, MpyPool_Type, MpyDRef_Type, MpyBuffer_Type,
    MpyStrings_Type, MpyReservation_Type;
extern PyObject *MpyExc_Error, *MpyExc_NotFound, *MpyExc_PoolFull,
    *MpyExc_TooBig, *MpyExc_Corrupt, *MpyExc_TooManyRefs;
/* Python classes the package registers (mempool._types): Table, FileRef. */
extern PyObject *mpy_table_class, *mpy_fileref_class;

/* errors.c */
PyObject *mpy_raise(int err, const char *what);
int mpy_errors_init(PyObject *m);

/* module.c */
const char *mpy_cstr(PyObject *str); /* UTF-8, ValueError on a NUL */
int mpy_numpy(void); /* 1 ready, 0 not installed (no exception), -1 error */

/* dref.c */
PyObject *mpy_dref_new(mempool_dref r);
int mpy_dref_arg(PyObject *o, mempool_dref *out);

/* pool.c */
mempool *mpy_pool_handle(MpyPool *self); /* for calls that keep the GIL */
MpyConn *mpy_pool_conn(MpyPool *self);
/* A new reference to the live handle, for a call that releases the GIL:
 * another thread may close the pool meanwhile. */
MpyConn *mpy_pool_hold(MpyPool *self);

/* buffer.c */
MpyBuffer *mpy_buffer_new(MpyConn *conn, const mempool_view *v,
                          mempool_dref r);
void mpy_buffer_release(MpyBuffer *b);

/* wrap.c: a Python object for pinned, typed bytes; steals @p b. */
PyObject *mpy_wrap(MpyBuffer *b);
/* put.c */
int mpy_put_array_obj(mempool *h, PyObject *arr, uint32_t flags,
                      mempool_dref *out);
PyObject *mpy_pool_put(MpyPool *self, PyObject *args, PyObject *kw);
PyObject *mpy_pool_put_strings(MpyPool *self, PyObject *args, PyObject *kw);
PyObject *mpy_pool_put_table(MpyPool *self, PyObject *args, PyObject *kw);
/* ndarray.c */
PyObject *mpy_ndarray(const mempool_array *a, PyObject *owner, int writable);
int mpy_dtype_to_mp(PyArray_Descr *d, uint32_t *dtype, uint64_t *elem);
/* strings.c */
PyObject *mpy_strings_new(PyObject *owner, const mempool_strings *s);
typedef struct {
    uint64_t *offsets;
    uint8_t  *blob;
    uint8_t  *validity;
    mempool_strings s;
} mpy_strbuild;
int mpy_strbuild_init(mpy_strbuild *b, PyObject *seq);
void mpy_strbuild_free(mpy_strbuild *b);
/* handoff.c: only when the library has the handoff primitives */
#ifdef MEMPOOL_CHAN_CREATE
#define MPY_HAVE_HANDOFF 1
extern PyTypeObject MpyChannel_Type;
MpyBuffer *mpy_pin_wait(MpyPool *pool, MpyConn *c, mempool_dref r,
                        double timeout_s);
PyObject *mpy_pool_name_put(MpyPool *self, PyObject *args);
PyObject *mpy_pool_name_get(MpyPool *self, PyObject *args);
PyObject *mpy_pool_name_drop(MpyPool *self, PyObject *name);
PyObject *mpy_pool_name_list(MpyPool *self, PyObject *unused);
PyObject *mpy_pool_give(MpyPool *self, PyObject *args, PyObject *kw);
PyObject *mpy_pool_take(MpyPool *self, PyObject *ref);
PyObject *mpy_pool_take_pinned(MpyPool *self, PyObject *ref);
PyObject *mpy_pool_channel(MpyPool *self, PyObject *args, PyObject *kw);
#else
#define MPY_HAVE_HANDOFF 0
#endif
/* reserve.c */
PyObject *mpy_pool_reserve(MpyPool *self, PyObject *args, PyObject *kw);
PyObject *mpy_pool_empty(MpyPool *self, PyObject *args, PyObject *kw);

#endif
