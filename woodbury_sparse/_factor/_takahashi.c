/*
 * Takahashi recursions for the selected inverse Z = M⁻¹ of M = L D Lᵀ.
 *
 * A plain CPython extension (no NumPy headers: arrays arrive through the buffer protocol),
 * built by setuptools at install time; woodbury_sparse._factor._selinv falls back to a
 * NumPy implementation when it is missing.
 *
 * Input: the lower triangular L in CSC form (int64 indptr/indices, float64 values, row
 * indices sorted, the diagonal first in every column), the reciprocal pivots 1/d of
 * M = L D Lᵀ with L unit (its stored diagonal ignored) or None for M = L Lᵀ (L with the
 * Cholesky diagonal), and an output array z of nnz(L) doubles. On return z holds
 * Z[i, j] for every stored (i, j) of L, i >= j:
 *
 *     Z[i, j] = -sum_{k in S_j} Z[i, k] L[k, j]            (i in S_j, the rows of column j
 *     Z[j, j] = 1/d_j - sum_{k in S_j} L[k, j] Z[k, j]       below its diagonal)
 *
 * for j = n-1, ..., 0. Every Z[i, k] needed (i, k in S_j) lies on the pattern of L when
 * that pattern is a Cholesky factor's (S_j minus k is inside S_k for k in S_j): the kernel
 * checks this and reports a pattern that is not closed instead of reading a wrong entry.
 *
 * symmetric() then lays Z out as the symmetric CSC matrix in M's own ordering (below).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
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
        /* L D Lᵀ: L unit (its stored diagonal ignored), s = 1. L Lᵀ (dinv NULL): the unit
         * factor's column j is L[:, j] s with s = 1/L[j, j], and d_j = 1/s², applied here
         * rather than in a scaled copy of L. */
        const double s = dinv ? 1.0 : 1.0 / l[p0];
        const double dj = dinv ? dinv[j] : s * s;
        for (int64_t p = p0 + 1; p < p1; p++) {
            if (indices[p] <= indices[p - 1] || indices[p] >= n)
                return 1;
            z[p] = 0.0;
        }
        for (int64_t q = p0 + 1; q < p1; q++) {
            const int64_t k = indices[q];
            const double lk = l[q] * s;
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
                z[q] = acc - ((a0 + a1) + (a2 + a3)) * s;
                continue;
            }
            double dot = 0.0;
            for (int64_t p = q + 1; p < p1; p++) {
                const int64_t i = indices[p];
                while (r < rend && indices[r] < i)
                    r++;
                if (r == rend || indices[r] != i)
                    return 2;
                const double zik = z[r]; /* Z[i, k], i > k */
                z[p] -= zik * lk;
                dot += zik * l[p];
            }
            z[q] = acc - dot * s;
        }
        double dot = 0.0;
        for (int64_t q = p0 + 1; q < p1; q++)
            dot += l[q] * z[q];
        z[p0] = dj - dot * s;
    }
    return 0;
}

/* A writable contiguous int32 or int64 array. */
static int get_index_buffer(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) != 0)
        return -1;
    const char *fmt = view->format ? view->format : "B";
    if (fmt[0] == '<' || fmt[0] == '=' || fmt[0] == '@')
        fmt++;
    int ok = fmt[1] == '\0' && ((view->itemsize == 4 && (fmt[0] == 'i' || fmt[0] == 'l')) ||
                                (view->itemsize == 8 && (fmt[0] == 'q' || fmt[0] == 'l')));
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous int32 or int64 array", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Check the CSC structure's indptr (0, monotone, ends at nnz): 0, or -1 with an error set. */
static int check_indptr(const int64_t *indptr, Py_ssize_t n, Py_ssize_t nnz, const char *who)
{
    if (n > 0 && (indptr[0] != 0 || indptr[n] != nnz)) {
        PyErr_Format(PyExc_ValueError, "%s: indptr does not span indices", who);
        return -1;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        if (indptr[j + 1] < indptr[j]) {
            PyErr_Format(PyExc_ValueError, "%s: indptr is not monotone", who);
            return -1;
        }
    }
    return 0;
}

static PyObject *py_takahashi(PyObject *self, PyObject *args)
{
    PyObject *o_indptr, *o_indices, *o_l, *o_dinv, *o_z;
    if (!PyArg_ParseTuple(args, "OOOOO:takahashi", &o_indptr, &o_indices, &o_l, &o_dinv, &o_z))
        return NULL;
    const int llt = o_dinv == Py_None;
    Py_buffer b_indptr, b_indices, b_l, b_dinv = {0}, b_z;
    int status = -1; /* set before any jump to the releases below */
    if (get_buffer(o_indptr, &b_indptr, 'q', 0, "indptr") != 0)
        return NULL;
    if (get_buffer(o_indices, &b_indices, 'q', 0, "indices") != 0)
        goto fail1;
    if (get_buffer(o_l, &b_l, 'd', 0, "values") != 0)
        goto fail2;
    if (!llt && get_buffer(o_dinv, &b_dinv, 'd', 0, "dinv") != 0)
        goto fail3;
    if (get_buffer(o_z, &b_z, 'd', 1, "z") != 0)
        goto fail4;

    Py_ssize_t n = b_indptr.len / 8 - 1;
    Py_ssize_t nnz = b_indices.len / 8;
    if (n < 0 || (!llt && b_dinv.len / 8 != n) || b_l.len / 8 != nnz || b_z.len / 8 != nnz) {
        PyErr_SetString(PyExc_ValueError, "takahashi: inconsistent array sizes");
    } else if (check_indptr((const int64_t *)b_indptr.buf, n, nnz, "takahashi") == 0) {
        Py_BEGIN_ALLOW_THREADS
        status = takahashi(n, (const int64_t *)b_indptr.buf, (const int64_t *)b_indices.buf,
                           (const double *)b_l.buf, llt ? NULL : (const double *)b_dinv.buf,
                           (double *)b_z.buf);
        Py_END_ALLOW_THREADS
        if (status == 1)
            PyErr_SetString(PyExc_ValueError,
                            "takahashi: row indices unsorted or diagonal not first");
        else if (status == 2)
            PyErr_SetString(PyExc_ValueError,
                            "takahashi: the pattern of L is not closed (not a Cholesky "
                            "factor's)");
    }
    PyBuffer_Release(&b_z);
fail4:
    if (!llt)
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

/*
 * The symmetric matrix B = Pᵀ (Z + Zᵀ − diag Z) P in CSC form with sorted row indices, from
 * the lower triangle Z on L's pattern (CSC: indptr, indices, z; diagonal first in every
 * column, as takahashi() checked): Z[i, j] lands at B[perm[i], perm[j]] and, off the
 * diagonal, at B[perm[j], perm[i]].
 *
 * Row r of B is, by symmetry, its column r: the entries of column k = perm⁻¹[r] of L and of
 * row k of L. Walking r = 0, 1, ... and appending r to the columns of those entries leaves
 * every column of B sorted: one counting pass and two scatters, no sort. Row k of L is read
 * from its transpose's pattern (built here: per row, perm[j] and the position in z).
 *
 * DEFINE_SYMMETRIC(name, T) writes the version whose output indices have type T (SciPy's
 * index dtype: int32 whenever the entries fit).
 */
#define DEFINE_SYMMETRIC(NAME, T)                                                           \
    static int NAME(Py_ssize_t n, const int64_t *indptr, const int64_t *indices,             \
                    const double *z, const int64_t *perm, const int64_t *pinv,               \
                    const int64_t *tptr, const int64_t *tcol, const int64_t *tpos,           \
                    int64_t *next, T *out_indptr, T *out_indices, double *out_data)          \
    {                                                                                        \
        out_indptr[0] = 0;                                                                   \
        for (Py_ssize_t c = 0; c < n; c++) {                                                 \
            const int64_t k = pinv[c];                                                       \
            next[c] = out_indptr[c];                                                         \
            out_indptr[c + 1] = (T)(out_indptr[c] + (indptr[k + 1] - indptr[k]) +            \
                                    (tptr[k + 1] - tptr[k]));                                \
        }                                                                                    \
        for (Py_ssize_t r = 0; r < n; r++) {                                                 \
            const int64_t k = pinv[r];                                                       \
            for (int64_t p = indptr[k]; p < indptr[k + 1]; p++) {                            \
                const int64_t at = next[perm[indices[p]]]++;                                 \
                out_indices[at] = (T)r;                                                      \
                out_data[at] = z[p];                                                         \
            }                                                                                \
            for (int64_t t = tptr[k]; t < tptr[k + 1]; t++) {                                \
                const int64_t at = next[tcol[t]]++;                                          \
                out_indices[at] = (T)r;                                                      \
                out_data[at] = z[tpos[t]];                                                   \
            }                                                                                \
        }                                                                                    \
        return 0;                                                                            \
    }

DEFINE_SYMMETRIC(symmetric32, int32_t)
DEFINE_SYMMETRIC(symmetric64, int64_t)

/* 0, 1 for a perm that is not a permutation, 3 for memory. */
static int symmetric(Py_ssize_t n, const int64_t *indptr, const int64_t *indices,
                     const double *z, const int64_t *perm, int wide, void *out_indptr,
                     void *out_indices, double *out_data)
{
    const int64_t nnz = indptr[n];
    const int64_t off = nnz - n; /* entries below the diagonal */
    int64_t *pinv = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int64_t *tptr = calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *next = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int64_t *tcol = malloc(sizeof(int64_t) * (size_t)(off > 0 ? off : 1));
    int64_t *tpos = malloc(sizeof(int64_t) * (size_t)(off > 0 ? off : 1));
    int status = 0;
    if (!pinv || !tptr || !next || !tcol || !tpos) {
        status = 3;
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++)
        pinv[k] = -1;
    for (Py_ssize_t k = 0; k < n; k++) {
        const int64_t c = perm[k];
        if (c < 0 || c >= n || pinv[c] >= 0) {
            status = 1;
            goto done;
        }
        pinv[c] = k;
    }
    /* The transpose's pattern: row i of L holds (i, j) for the columns j < i. */
    for (Py_ssize_t j = 0; j < n; j++)
        for (int64_t p = indptr[j] + 1; p < indptr[j + 1]; p++)
            tptr[indices[p] + 1]++;
    for (Py_ssize_t i = 0; i < n; i++)
        tptr[i + 1] += tptr[i];
    for (Py_ssize_t i = 0; i < n; i++)
        next[i] = tptr[i];
    for (Py_ssize_t j = 0; j < n; j++) {
        for (int64_t p = indptr[j] + 1; p < indptr[j + 1]; p++) {
            const int64_t at = next[indices[p]]++;
            tcol[at] = perm[j];
            tpos[at] = p;
        }
    }
    if (wide)
        symmetric64(n, indptr, indices, z, perm, pinv, tptr, tcol, tpos, next,
                    (int64_t *)out_indptr, (int64_t *)out_indices, out_data);
    else
        symmetric32(n, indptr, indices, z, perm, pinv, tptr, tcol, tpos, next,
                    (int32_t *)out_indptr, (int32_t *)out_indices, out_data);
done:
    free(pinv);
    free(tptr);
    free(next);
    free(tcol);
    free(tpos);
    return status;
}

static PyObject *py_symmetric(PyObject *self, PyObject *args)
{
    PyObject *o_indptr, *o_indices, *o_z, *o_perm, *o_optr, *o_oidx, *o_odata;
    if (!PyArg_ParseTuple(args, "OOOOOOO:symmetric", &o_indptr, &o_indices, &o_z, &o_perm,
                          &o_optr, &o_oidx, &o_odata))
        return NULL;
    Py_buffer b_indptr, b_indices, b_z, b_perm, b_optr, b_oidx, b_odata;
    int status = -1;
    if (get_buffer(o_indptr, &b_indptr, 'q', 0, "indptr") != 0)
        return NULL;
    if (get_buffer(o_indices, &b_indices, 'q', 0, "indices") != 0)
        goto fail1;
    if (get_buffer(o_z, &b_z, 'd', 0, "z") != 0)
        goto fail2;
    if (get_buffer(o_perm, &b_perm, 'q', 0, "perm") != 0)
        goto fail3;
    /* The output's indices: int64, or int32 (SciPy's choice whenever they fit). */
    if (get_index_buffer(o_optr, &b_optr, "out_indptr") != 0)
        goto fail4;
    if (get_index_buffer(o_oidx, &b_oidx, "out_indices") != 0)
        goto fail5;
    if (get_buffer(o_odata, &b_odata, 'd', 1, "out_data") != 0)
        goto fail6;

    Py_ssize_t n = b_indptr.len / 8 - 1;
    Py_ssize_t nnz = b_indices.len / 8;
    Py_ssize_t width = b_optr.itemsize;
    if (n < 0 || b_z.len / 8 != nnz || b_perm.len / 8 != n || nnz < n ||
        b_odata.len / 8 != 2 * nnz - n || (width != 4 && width != 8) ||
        b_oidx.itemsize != width || b_optr.len / width != n + 1 ||
        b_oidx.len / width != 2 * nnz - n) {
        PyErr_SetString(PyExc_ValueError, "symmetric: inconsistent array sizes");
    } else if (check_indptr((const int64_t *)b_indptr.buf, n, nnz, "symmetric") == 0) {
        Py_BEGIN_ALLOW_THREADS
        status = symmetric(n, (const int64_t *)b_indptr.buf, (const int64_t *)b_indices.buf,
                           (const double *)b_z.buf, (const int64_t *)b_perm.buf, width == 8,
                           b_optr.buf, b_oidx.buf, (double *)b_odata.buf);
        Py_END_ALLOW_THREADS
        if (status == 1)
            PyErr_SetString(PyExc_ValueError, "symmetric: perm is not a permutation");
        else if (status == 3)
            PyErr_NoMemory();
    }
    PyBuffer_Release(&b_odata);
fail6:
    PyBuffer_Release(&b_oidx);
fail5:
    PyBuffer_Release(&b_optr);
fail4:
    PyBuffer_Release(&b_perm);
fail3:
    PyBuffer_Release(&b_z);
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
     "takahashi(indptr, indices, values, dinv, z): selected inverse of L D L^T (L L^T when "
     "dinv is None) on L's pattern, written into z."},
    {"symmetric", py_symmetric, METH_VARARGS,
     "symmetric(indptr, indices, z, perm, out_indptr, out_indices, out_data): "
     "P^T (Z + Z^T - diag Z) P in CSC form, row indices sorted, from Z's lower triangle."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_takahashi", "Takahashi recursions (see _selinv.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__takahashi(void)
{
    return PyModule_Create(&module);
}
