/*
 * Takahashi recursions for the selected inverse Z = M⁻¹ of M = L D Lᵀ.
 *
 * A plain CPython extension (no NumPy headers: arrays arrive through the buffer protocol),
 * built by setuptools at install time; woodbury_sparse._factor._selinv falls back to a
 * NumPy implementation when it is missing.
 *
 * Input: the lower triangular L in CSC form (int64 indptr, int32 or int64 indices, float64
 * values; row indices sorted, the diagonal first in every column), the reciprocal pivots 1/d of
 * M = L D Lᵀ with L unit (its stored diagonal ignored) or None for M = L Lᵀ (L with the
 * Cholesky diagonal), and an output array z of nnz(L) doubles. On return z holds
 * Z[i, j] for every stored (i, j) of L, i >= j:
 *
 *     Z[i, j] = -sum_{k in S_j} Z[i, k] L[k, j]            (i in S_j, the rows of column j
 *     Z[j, j] = 1/d_j - sum_{k in S_j} L[k, j] Z[k, j]       below its diagonal)
 *
 * for j = n-1, ..., 0. Every Z[i, k] needed (i, k in S_j) lies on the pattern of L when
 * that pattern is a Cholesky factor's (S_j minus k is inside S_k for k in S_j): the kernel
 * checks this where it searches column k, and reports a pattern that is not closed instead
 * of reading a wrong entry. (Where column k holds exactly as many entries below k as S_j
 * does, they are taken to be those rows without a search: true of every closed pattern.)
 *
 * symmetric() then lays Z out as the symmetric CSC matrix in M's own ordering (below).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Row indices as SciPy stores them: int32 (whenever they fit) or int64, read in place. */
typedef struct {
    const void *p;
    int wide;
} index_array;

static inline int64_t IX(index_array a, int64_t i)
{
    return a.wide ? ((const int64_t *)a.p)[i] : (int64_t)((const int32_t *)a.p)[i];
}

static inline const char *IX_AT(index_array a, int64_t i)
{
    return (const char *)a.p + i * (a.wide ? 8 : 4);
}

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

/* Columns of a supernode computed together (see takahashi()). */
#define GROUP 32

/* Σ_t x[t] y[t] with four partial sums (the reduction pipelines; no -ffast-math). */
static inline double dot(const double *x, const double *y, int64_t m)
{
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    int64_t t = 0;
    for (; t + 4 <= m; t += 4) {
        a0 += x[t] * y[t];
        a1 += x[t + 1] * y[t + 1];
        a2 += x[t + 2] * y[t + 2];
        a3 += x[t + 3] * y[t + 3];
    }
    for (; t < m; t++)
        a0 += x[t] * y[t];
    return (a0 + a1) + (a2 + a3);
}

/*
 * The recursion, a group of columns j0..j1 (at most GROUP) at a time: columns whose
 * patterns nest as in a supernode, S_c = {c+1, ..., j1} ∪ T for j0 <= c <= j1 with
 * T = S_{j1}. Then Z[T, c] = -Z[T, T] l_c - Σ_{m = c+1..j1} Z[T, m] L[m, c], and the
 * product with Z[T, T] (the bulk of the work) is done for all the group's columns in one
 * pass over Z[T, T] (phase 1): each of its columns is read once per group instead of once
 * per column, while it is in L1. Phase 2 adds the group's own triangle, column by column.
 *
 * 0 on success, 1 for a bad structure (diagonal not first / indices out of order), 2 for a
 * pattern that is not closed under the recursion, 3 for memory.
 */
static int takahashi(Py_ssize_t n, const int64_t *indptr, index_array indices,
                     const double *l, const double *dinv, double *z)
{
    int64_t widest = 1;
    for (Py_ssize_t j = 0; j < n; j++)
        if (indptr[j + 1] - indptr[j] > widest)
            widest = indptr[j + 1] - indptr[j];
    int64_t *where = malloc(sizeof(int64_t) * (size_t)widest); /* Z[i, k]'s positions */
    if (!where)
        return 3;
    int status = 0;
    for (Py_ssize_t j1 = n - 1; j1 >= 0;) {
        const int64_t p0 = indptr[j1], p1 = indptr[j1 + 1];
        if (p1 <= p0 || IX(indices, p0) != j1) {
            status = 1;
            break;
        }
        for (int64_t p = p0 + 1; p < p1; p++) {
            if (IX(indices, p) <= IX(indices, p - 1) || IX(indices, p) >= n) {
                status = 1;
                goto done;
            }
        }
        const int64_t nt = p1 - p0 - 1; /* |T| */
        /* The group: column c = j0 - 1 joins when its pattern is {c, c+1} ∪ S_{c+1}. */
        Py_ssize_t j0 = j1;
        while (j0 > 0 && j1 - j0 + 1 < GROUP) {
            const int64_t c = j0 - 1, pc = indptr[c], count = indptr[j0 + 1] - indptr[j0];
            if (indptr[c + 1] - pc != count + 1 || IX(indices, pc) != c ||
                IX(indices, pc + 1) != j0 ||
                memcmp(IX_AT(indices, pc + 2), IX_AT(indices, indptr[j0] + 1),
                       (size_t)(IX_AT(indices, count - 1) - IX_AT(indices, 0))) != 0)
                break;
            j0 = c;
        }
        const int width = (int)(j1 - j0 + 1);
        double *zc[GROUP];
        const double *lc[GROUP];
        for (int g = 0; g < width; g++) { /* column j0 + g: its T part */
            const int64_t at = indptr[j0 + g] + (j1 - j0 - g) + 1;
            zc[g] = z + at;
            lc[g] = l + at;
            memset(z + indptr[j0 + g], 0, sizeof(double) * (size_t)(at - indptr[j0 + g] + nt));
        }
        /* Phase 1: zc[g] = Z[T, T] lc[g] (accumulated with L's values as stored). */
        for (int64_t u = 0; u < nt; u++) {
            const int64_t k = IX(indices, p0 + 1 + u), rest = nt - u - 1;
            const double zkk = z[indptr[k]];
            int64_t r = indptr[k] + 1;
            const int64_t rend = indptr[k + 1];
            if (rend - r == rest) {
                /* Column k below its diagonal holds exactly the rows of T after k (it
                 * holds them all, and as many entries): contiguous, the usual case. */
                const double *zk = z + r;
                for (int g = 0; g < width; g++) {
                    double *y = zc[g] + u + 1;
                    const double *x = lc[g] + u + 1, lk = lc[g][u];
                    for (int64_t t = 0; t < rest; t++)
                        y[t] += zk[t] * lk;
                    zc[g][u] += zkk * lk + dot(zk, x, rest);
                }
                continue;
            }
            for (int64_t t = 0; t < rest; t++) {
                const int64_t i = IX(indices, p0 + 2 + u + t);
                while (r < rend && IX(indices, r) < i)
                    r++;
                if (r == rend || IX(indices, r) != i) {
                    status = 2;
                    goto done;
                }
                where[t] = r; /* Z[i, k], i > k */
            }
            for (int g = 0; g < width; g++) {
                double *y = zc[g] + u + 1, acc = zkk * lc[g][u];
                const double *x = lc[g] + u + 1, lk = lc[g][u];
                for (int64_t t = 0; t < rest; t++) {
                    const double zik = z[where[t]];
                    y[t] += zik * lk;
                    acc += zik * x[t];
                }
                zc[g][u] += acc;
            }
        }
        /* Phase 2, c = j1, ..., j0. L D Lᵀ: L unit (its stored diagonal ignored), s = 1.
         * L Lᵀ (dinv NULL): the unit factor's column c is L[:, c] s with s = 1/L[c, c],
         * and d_c = 1/s², applied here rather than in a scaled copy of L. */
        for (Py_ssize_t c = j1; c >= j0; c--) {
            const int g = (int)(c - j0);
            const int64_t pc = indptr[c];
            const double s = dinv ? 1.0 : 1.0 / l[pc];
            const double dc = dinv ? dinv[c] : s * s;
            double *y = zc[g];
            for (int64_t u = 0; u < nt; u++)
                y[u] = -s * y[u];
            for (Py_ssize_t m = c + 1; m <= j1; m++) { /* - Z[T, m] L[m, c] */
                const double lm = l[pc + (m - c)] * s;
                const double *zm = zc[m - j0];
                for (int64_t u = 0; u < nt; u++)
                    y[u] -= zm[u] * lm;
            }
            for (Py_ssize_t m = c + 1; m <= j1; m++) { /* Z[m, c], m in the group */
                double acc = dot(zc[m - j0], lc[g], nt);
                for (Py_ssize_t k = c + 1; k <= j1; k++) {
                    const int64_t lo = k < m ? k : m, hi = k < m ? m : k;
                    acc += z[indptr[lo] + (hi - lo)] * l[pc + (k - c)];
                }
                z[pc + (m - c)] = -acc * s;
            }
            double diag = dot(y, lc[g], nt);
            for (int64_t a = 1; a <= j1 - c; a++)
                diag += l[pc + a] * z[pc + a];
            z[pc] = dc - diag * s;
        }
        j1 = j0 - 1;
    }
done:
    free(where);
    return status;
}

/* A contiguous int32 or int64 array. */
static int get_index_buffer(PyObject *obj, Py_buffer *view, int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0)
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
    if (get_index_buffer(o_indices, &b_indices, 0, "indices") != 0)
        goto fail1;
    if (get_buffer(o_l, &b_l, 'd', 0, "values") != 0)
        goto fail2;
    if (!llt && get_buffer(o_dinv, &b_dinv, 'd', 0, "dinv") != 0)
        goto fail3;
    if (get_buffer(o_z, &b_z, 'd', 1, "z") != 0)
        goto fail4;

    Py_ssize_t n = b_indptr.len / 8 - 1;
    Py_ssize_t nnz = b_indices.len / b_indices.itemsize;
    const index_array indices = {b_indices.buf, b_indices.itemsize == 8};
    if (n < 0 || (!llt && b_dinv.len / 8 != n) || b_l.len / 8 != nnz || b_z.len / 8 != nnz) {
        PyErr_SetString(PyExc_ValueError, "takahashi: inconsistent array sizes");
    } else if (check_indptr((const int64_t *)b_indptr.buf, n, nnz, "takahashi") == 0) {
        Py_BEGIN_ALLOW_THREADS
        status = takahashi(n, (const int64_t *)b_indptr.buf, indices,
                           (const double *)b_l.buf, llt ? NULL : (const double *)b_dinv.buf,
                           (double *)b_z.buf);
        Py_END_ALLOW_THREADS
        if (status == 1)
            PyErr_SetString(PyExc_ValueError,
                            "takahashi: row indices unsorted or diagonal not first");
        else if (status == 3)
            PyErr_NoMemory();
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
 * from its transpose (built here: per row, perm[j] and the value).
 *
 * DEFINE_SYMMETRIC(name, T) writes the version whose output indices have type T (SciPy's
 * index dtype: int32 whenever the entries fit).
 */
#define DEFINE_SYMMETRIC(NAME, T)                                                           \
    static int NAME(Py_ssize_t n, const int64_t *indptr, index_array indices,                \
                    const double *z, const int64_t *perm, const int64_t *pinv,               \
                    const int64_t *tptr, T *tcol, double *tval, int64_t *next,               \
                    T *out_indptr, T *out_indices, double *out_data)                         \
    {                                                                                        \
        for (Py_ssize_t i = 0; i < n; i++)                                                   \
            next[i] = tptr[i];                                                               \
        for (Py_ssize_t j = 0; j < n; j++) {                                                 \
            for (int64_t p = indptr[j] + 1; p < indptr[j + 1]; p++) {                        \
                const int64_t at = next[IX(indices, p)]++;                                   \
                tcol[at] = (T)perm[j];                                                       \
                tval[at] = z[p];                                                             \
            }                                                                                \
        }                                                                                    \
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
                const int64_t at = next[perm[IX(indices, p)]]++;                             \
                out_indices[at] = (T)r;                                                      \
                out_data[at] = z[p];                                                         \
            }                                                                                \
            for (int64_t t = tptr[k]; t < tptr[k + 1]; t++) {                                \
                const int64_t at = next[tcol[t]]++;                                          \
                out_indices[at] = (T)r;                                                      \
                out_data[at] = tval[t];                                                      \
            }                                                                                \
        }                                                                                    \
        return 0;                                                                            \
    }

DEFINE_SYMMETRIC(symmetric32, int32_t)
DEFINE_SYMMETRIC(symmetric64, int64_t)

/* 0, 1 for a perm that is not a permutation, 3 for memory. */
static int symmetric(Py_ssize_t n, const int64_t *indptr, index_array indices,
                     const double *z, const int64_t *perm, int wide, void *out_indptr,
                     void *out_indices, double *out_data)
{
    const int64_t nnz = indptr[n];
    const int64_t off = nnz - n; /* entries below the diagonal */
    int64_t *pinv = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int64_t *tptr = calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *next = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    void *tcol = malloc((wide ? 8 : 4) * (size_t)(off > 0 ? off : 1)); /* perm[j], as T */
    double *tval = malloc(sizeof(double) * (size_t)(off > 0 ? off : 1));
    int status = 0;
    if (!pinv || !tptr || !next || !tcol || !tval) {
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
    /* The transpose's pattern: row i of L holds (i, j) for the columns j < i (its entries are
     * filled by symmetric32/64, with perm[j] in the output's index type). */
    for (Py_ssize_t j = 0; j < n; j++)
        for (int64_t p = indptr[j] + 1; p < indptr[j + 1]; p++)
            tptr[IX(indices, p) + 1]++;
    for (Py_ssize_t i = 0; i < n; i++)
        tptr[i + 1] += tptr[i];
    if (wide)
        symmetric64(n, indptr, indices, z, perm, pinv, tptr, (int64_t *)tcol, tval, next,
                    (int64_t *)out_indptr, (int64_t *)out_indices, out_data);
    else
        symmetric32(n, indptr, indices, z, perm, pinv, tptr, (int32_t *)tcol, tval, next,
                    (int32_t *)out_indptr, (int32_t *)out_indices, out_data);
done:
    free(pinv);
    free(tptr);
    free(next);
    free(tcol);
    free(tval);
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
    if (get_index_buffer(o_indices, &b_indices, 0, "indices") != 0)
        goto fail1;
    if (get_buffer(o_z, &b_z, 'd', 0, "z") != 0)
        goto fail2;
    if (get_buffer(o_perm, &b_perm, 'q', 0, "perm") != 0)
        goto fail3;
    /* The output's indices: int64, or int32 (SciPy's choice whenever they fit). */
    if (get_index_buffer(o_optr, &b_optr, 1, "out_indptr") != 0)
        goto fail4;
    if (get_index_buffer(o_oidx, &b_oidx, 1, "out_indices") != 0)
        goto fail5;
    if (get_buffer(o_odata, &b_odata, 'd', 1, "out_data") != 0)
        goto fail6;

    Py_ssize_t n = b_indptr.len / 8 - 1;
    Py_ssize_t nnz = b_indices.len / b_indices.itemsize;
    const index_array indices = {b_indices.buf, b_indices.itemsize == 8};
    Py_ssize_t width = b_optr.itemsize;
    if (n < 0 || b_z.len / 8 != nnz || b_perm.len / 8 != n || nnz < n ||
        b_odata.len / 8 != 2 * nnz - n || (width != 4 && width != 8) ||
        b_oidx.itemsize != width || b_optr.len / width != n + 1 ||
        b_oidx.len / width != 2 * nnz - n) {
        PyErr_SetString(PyExc_ValueError, "symmetric: inconsistent array sizes");
    } else if (check_indptr((const int64_t *)b_indptr.buf, n, nnz, "symmetric") == 0) {
        Py_BEGIN_ALLOW_THREADS
        status = symmetric(n, (const int64_t *)b_indptr.buf, indices,
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
