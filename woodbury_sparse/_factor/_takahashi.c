/*
 * Takahashi recursions for the selected inverse Z = M⁻¹ of M = L D Lᵀ.
 *
 * A plain CPython extension (no NumPy headers: arrays arrive through the buffer protocol),
 * built by setuptools at install time; woodbury_sparse._factor._selinv falls back to a
 * NumPy implementation when it is missing.
 *
 * Input: the unit lower triangular L in CSC form (int64 indptr/indices, float64 values,
 * row indices sorted, the diagonal first in every column; its value is ignored), the
 * reciprocal pivots 1/d, and an output array z of nnz(L) doubles. On return z holds
 * Z[i, j] for every stored (i, j) of L, i >= j:
 *
 *     Z[i, j] = -sum_{k in S_j} Z[i, k] L[k, j]            (i in S_j, the rows of column j
 *     Z[j, j] = 1/d_j - sum_{k in S_j} L[k, j] Z[k, j]       below its diagonal)
 *
 * for j = n-1, ..., 0. Every Z[i, k] needed (i, k in S_j) lies on the pattern of L when
 * that pattern is a Cholesky factor's (S_j minus k is inside S_k for k in S_j): the kernel
 * checks this and reports a pattern that is not closed instead of reading a wrong entry.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static int get_buffer(PyObject *obj, Py_buffer *view, char kind, int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0)
        return -1;
    const char *fmt = view->format ? view->format : "B";
    if (fmt[0] == '<' || fmt[0] == '=' || fmt[0] == '@')
        fmt++;
    int ok = view->itemsize == 8 && fmt[1] == '\0' &&
             (kind == 'd' ? fmt[0] == 'd' : (fmt[0] == 'q' || fmt[0] == 'l'));
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous %s array", what,
                     kind == 'd' ? "float64" : "int64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* 0 on success, 1 for a bad structure (diagonal not first / indices out of order),
 * 2 for a pattern that is not closed under the recursion. */
static int takahashi(Py_ssize_t n, const int64_t *indptr, const int64_t *indices,
                     const double *l, const double *dinv, double *z)
{
    for (Py_ssize_t j = n - 1; j >= 0; j--) {
        const int64_t p0 = indptr[j], p1 = indptr[j + 1];
        if (p1 <= p0 || indices[p0] != j)
            return 1;
        for (int64_t p = p0 + 1; p < p1; p++) {
            if (indices[p] <= indices[p - 1] || indices[p] >= n)
                return 1;
            z[p] = 0.0;
        }
        for (int64_t q = p0 + 1; q < p1; q++) {
            const int64_t k = indices[q];
            const double lk = l[q];
            const int64_t rend = indptr[k + 1];
            int64_t r = indptr[k] + 1;
            double acc = z[q] - z[indptr[k]] * lk; /* Z[k, k] L[k, j] */
            const int64_t rest = p1 - q - 1;
            if (rend - r == rest) {
                /* Column k below its diagonal holds exactly the rows of S_j after k (it
                 * holds them all, and as many entries): a contiguous axpy and dot, the
                 * usual case inside a supernode. Four partial sums let the dot pipeline. */
                const double *zk = z + r, *lp = l + q + 1;
                double *zj = z + q + 1, a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
                int64_t t = 0;
                for (; t + 4 <= rest; t += 4) {
                    zj[t] -= zk[t] * lk;
                    zj[t + 1] -= zk[t + 1] * lk;
                    zj[t + 2] -= zk[t + 2] * lk;
                    zj[t + 3] -= zk[t + 3] * lk;
                    a0 += zk[t] * lp[t];
                    a1 += zk[t + 1] * lp[t + 1];
                    a2 += zk[t + 2] * lp[t + 2];
                    a3 += zk[t + 3] * lp[t + 3];
                }
                for (; t < rest; t++) {
                    zj[t] -= zk[t] * lk;
                    a0 += zk[t] * lp[t];
                }
                z[q] = acc - ((a0 + a1) + (a2 + a3));
                continue;
            }
            for (int64_t p = q + 1; p < p1; p++) {
                const int64_t i = indices[p];
                while (r < rend && indices[r] < i)
                    r++;
                if (r == rend || indices[r] != i)
                    return 2;
                const double zik = z[r]; /* Z[i, k], i > k */
                z[p] -= zik * lk;
                acc -= zik * l[p];
            }
            z[q] = acc;
        }
        double diag = dinv[j];
        for (int64_t q = p0 + 1; q < p1; q++)
            diag -= l[q] * z[q];
        z[p0] = diag;
    }
    return 0;
}

static PyObject *py_takahashi(PyObject *self, PyObject *args)
{
    PyObject *o_indptr, *o_indices, *o_l, *o_dinv, *o_z;
    if (!PyArg_ParseTuple(args, "OOOOO:takahashi", &o_indptr, &o_indices, &o_l, &o_dinv, &o_z))
        return NULL;
    Py_buffer b_indptr, b_indices, b_l, b_dinv, b_z;
    int status = -1; /* set before any jump to the releases below */
    if (get_buffer(o_indptr, &b_indptr, 'q', 0, "indptr") != 0)
        return NULL;
    if (get_buffer(o_indices, &b_indices, 'q', 0, "indices") != 0)
        goto fail1;
    if (get_buffer(o_l, &b_l, 'd', 0, "values") != 0)
        goto fail2;
    if (get_buffer(o_dinv, &b_dinv, 'd', 0, "dinv") != 0)
        goto fail3;
    if (get_buffer(o_z, &b_z, 'd', 1, "z") != 0)
        goto fail4;

    Py_ssize_t n = b_indptr.len / 8 - 1;
    Py_ssize_t nnz = b_indices.len / 8;
    if (n < 0 || b_dinv.len / 8 != n || b_l.len / 8 != nnz || b_z.len / 8 != nnz) {
        PyErr_SetString(PyExc_ValueError, "takahashi: inconsistent array sizes");
    } else {
        const int64_t *indptr = (const int64_t *)b_indptr.buf;
        if (n > 0 && (indptr[0] != 0 || indptr[n] != nnz)) {
            PyErr_SetString(PyExc_ValueError, "takahashi: indptr does not span indices");
        } else {
            int bad = 0;
            for (Py_ssize_t j = 0; j < n && !bad; j++)
                bad = indptr[j + 1] < indptr[j];
            if (bad) {
                PyErr_SetString(PyExc_ValueError, "takahashi: indptr is not monotone");
            } else {
                Py_BEGIN_ALLOW_THREADS
                status = takahashi(n, indptr, (const int64_t *)b_indices.buf,
                                   (const double *)b_l.buf, (const double *)b_dinv.buf,
                                   (double *)b_z.buf);
                Py_END_ALLOW_THREADS
                if (status == 1)
                    PyErr_SetString(PyExc_ValueError,
                                    "takahashi: row indices unsorted or diagonal not first");
                else if (status == 2)
                    PyErr_SetString(PyExc_ValueError,
                                    "takahashi: the pattern of L is not closed (not a "
                                    "Cholesky factor's)");
            }
        }
    }
    PyBuffer_Release(&b_z);
fail4:
    PyBuffer_Release(&b_dinv);
fail3:
    PyBuffer_Release(&b_l);
fail2:
    PyBuffer_Release(&b_indices);
fail1:
    PyBuffer_Release(&b_indptr);
    if (status != 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"takahashi", py_takahashi, METH_VARARGS,
     "takahashi(indptr, indices, values, dinv, z): selected inverse of L D L^T on L's "
     "pattern, written into z."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_takahashi", "Takahashi recursions (see _selinv.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__takahashi(void)
{
    return PyModule_Create(&module);
}
