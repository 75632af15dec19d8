/* SPDX-License-Identifier: MIT */
/*
 * module.c - the _mempool extension module: type registration, the lazy
 * numpy import, the fork generation counter, module-level functions
 * (destroy, version, _set_types) and mpy_cstr (names for the C calls).
 *
 * Fork safety: a pthread_atfork child handler bumps mpy_fork_gen, so every
 * handle opened before the fork is recognised as the parent's (its pins are
 * never released and it is never used) and pools reopen on their next call.
 */
#define MPY_IMPORT_NUMPY
#include "mpy.h"

#include <pthread.h>
#include <string.h>

unsigned long mpy_fork_gen;
PyObject *mpy_table_class, *mpy_fileref_class;

static void after_fork_child(void)
{
    mpy_fork_gen++;
}

/* The UTF-8 form of str @p str for a C call that takes a NUL-terminated
 * name, or NULL with ValueError when it holds a NUL (the C side would see
 * only the part before it: another pool, name or column), as open() and
 * os.* refuse such paths. */
const char *mpy_cstr(PyObject *str)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(str, &n);

    if (s && strlen(s) != (size_t)n) {
        PyErr_SetString(PyExc_ValueError, "embedded null character");
        return NULL;
    }
    return s;
}

/* 1 if numpy's C API is ready, 0 if numpy is not installed, -1 on another
 * error (with an exception set). Tried once per process. */
int mpy_numpy(void)
{
    static int state; /* 0 untried, 1 ready, 2 missing */

    if (state == 1)
        return 1;
    if (state == 2)
        return 0;
    if (_import_array() < 0) {
        if (PyErr_ExceptionMatches(PyExc_ImportError)) {
            PyErr_Clear();
            state = 2;
            return 0;
        }
        return -1;
    }
    state = 1;
    return 1;
}

static PyObject *mod_destroy(PyObject *m, PyObject *arg)
{
    const char *name;
    int rc;

    (void)m;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "destroy() takes a str");
        return NULL;
    }
    if (!(name = mpy_cstr(arg)))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = mempool_destroy(name);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return mpy_raise(rc, name);
    Py_RETURN_NONE;
}

static PyObject *mod_set_types(PyObject *m, PyObject *args)
{
    PyObject *table, *fileref;

    (void)m;
    if (!PyArg_ParseTuple(args, "OO", &table, &fileref))
        return NULL;
    Py_XSETREF(mpy_table_class, Py_NewRef(table));
    Py_XSETREF(mpy_fileref_class, Py_NewRef(fileref));
    Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
    long err = PyLong_AsLong(arg);

    (void)m;
    if (err == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(mempool_strerror((int)err));
}

static PyMethodDef methods[] = {
    {"destroy", mod_destroy, METH_O,
     "destroy(name)\n--\n\nRemove pool *name*: its shared memory and spill "
     "directory. Attached processes keep their mapping until they close."},
    {"_set_types", mod_set_types, METH_VARARGS, NULL},
    {"strerror", mod_strerror, METH_O,
     "strerror(code)\n--\n\nThe library's description of an error code."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_mempool",
    "The native core of the mempool package: share objects between "
    "processes through one POSIX shared-memory arena.",
    -1, methods, NULL, NULL, NULL, NULL};

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
    if (PyType_Ready(t) < 0)
        return -1;
    return PyModule_AddObjectRef(m, name, (PyObject *)t);
}

PyMODINIT_FUNC PyInit__mempool(void);
PyMODINIT_FUNC PyInit__mempool(void)
{
    static int atfork_done;
    PyObject *m = PyModule_Create(&moddef);

    if (!m)
        return NULL;
    if (!atfork_done) {
        if (pthread_atfork(NULL, NULL, after_fork_child) != 0) {
            Py_DECREF(m);
            return PyErr_NoMemory();
        }
        atfork_done = 1;
    }
    if (mpy_errors_init(m) < 0 ||
        add_type(m, &MpyConn_Type, "_Handle") < 0 ||
        add_type(m, &MpyPool_Type, "PoolBase") < 0 ||
        add_type(m, &MpyDRef_Type, "DRef") < 0 ||
        add_type(m, &MpyBuffer_Type, "Buffer") < 0 ||
        add_type(m, &MpyStrings_Type, "Strings") < 0 ||
        add_type(m, &MpyReservation_Type, "Reservation") < 0 ||
#if MPY_HAVE_HANDOFF
        add_type(m, &MpyChannel_Type, "Channel") < 0 ||
#endif
        PyModule_AddIntConstant(m, "HAVE_HANDOFF", MPY_HAVE_HANDOFF) < 0 ||
        PyModule_AddStringConstant(m, "__version__", mempool_version()) < 0 ||
        PyModule_AddIntConstant(m, "TYPE_BYTES", MEMPOOL_TYPE_BYTES) < 0 ||
        PyModule_AddIntConstant(m, "TYPE_ARRAY", MEMPOOL_TYPE_ARRAY) < 0 ||
        PyModule_AddIntConstant(m, "TYPE_STRINGS", MEMPOOL_TYPE_STRINGS) < 0 ||
        PyModule_AddIntConstant(m, "TYPE_TABLE", MEMPOOL_TYPE_TABLE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
