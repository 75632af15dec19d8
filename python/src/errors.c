/* SPDX-License-Identifier: MIT */
/*
 * errors.c - the exception hierarchy and the map from library results to
 * it. mempool.Error is an OSError whose .errno is the positive error number
 * (the library's MEMPOOL_E* codes become 4201.. so they never collide with
 * errno values); the subclasses name the cases callers handle on their own.
 */
#include "mpy.h"

#include <errno.h>

PyObject *MpyExc_Error, *MpyExc_NotFound, *MpyExc_PoolFull, *MpyExc_TooBig,
    *MpyExc_Corrupt, *MpyExc_TooManyRefs;

PyObject *mpy_raise(int err, const char *what)
{
    PyObject *type = MpyExc_Error, *exc;

    switch (err) {
    case -ENOENT: type = MpyExc_NotFound; break;
    case -ENOMEM: type = MpyExc_PoolFull; break;
    case -E2BIG: type = MpyExc_TooBig; break;
    case MEMPOOL_ECORRUPT: type = MpyExc_Corrupt; break;
    case -ENOBUFS: type = MpyExc_TooManyRefs; break;
    default: break;
    }
    exc = PyObject_CallFunction(type, "is", -err, mempool_strerror(err));
    if (!exc)
        return NULL;
    if (what) {
        PyObject *s = PyUnicode_FromString(what);
        if (!s || PyObject_SetAttrString(exc, "filename", s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(exc);
            return NULL;
        }
        Py_DECREF(s);
    }
    PyErr_SetObject(type, exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *new_exc(PyObject *m, const char *name, PyObject *base,
                         const char *doc)
{
    char full[64];
    PyObject *e;

    PyOS_snprintf(full, sizeof full, "mempool.%s", name);
    e = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
    if (!e || PyModule_AddObjectRef(m, name, e) < 0) {
        Py_XDECREF(e);
        return NULL;
    }
    return e;
}

int mpy_errors_init(PyObject *m)
{
    if (!(MpyExc_Error = new_exc(m, "Error", PyExc_OSError,
            "A mempool call failed; .errno is the error number (library "
            "codes are 4201 and up) and .strerror its description.")))
        return -1;
    if (!(MpyExc_NotFound = new_exc(m, "NotFound", MpyExc_Error,
            "The object is gone, never published, or the DRef is stale "
            "(ENOENT).")) ||
        !(MpyExc_PoolFull = new_exc(m, "PoolFull", MpyExc_Error,
            "The arena has no room for the object, even after spilling "
            "(ENOMEM).")) ||
        !(MpyExc_TooBig = new_exc(m, "TooBig", MpyExc_Error,
            "The object is larger than the arena (E2BIG).")) ||
        !(MpyExc_Corrupt = new_exc(m, "Corrupt", MpyExc_Error,
            "Shared state or a file failed validation.")) ||
        !(MpyExc_TooManyRefs = new_exc(m, "TooManyRefs", MpyExc_Error,
            "This process holds as many pins and references as its table "
            "allows (ENOBUFS; the pool's max_refs, fixed at creation); the "
            "call changed nothing. Release buffers or drop references, or "
            "create the pool with a larger max_refs.")))
        return -1;
    return 0;
}
