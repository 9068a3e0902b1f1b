/* The inner loops of a sparse personalized-PageRank step (graphdex/graph/projection.py, _SparseWalk).
 *
 * Why C: a step reads tens of thousands of matrix entries and lands on tens of thousands of rows, of which only a
 * few thousand pass a score on. In numpy every pass over those entries or rows (copy the columns out, multiply, add,
 * find the rows reached, read them back, clear them) is a separate trip through memory; here a step is one pass over
 * its entries and one over the rows they reached. The sums are float64 and added column after column, entry after
 * entry, in the order given, so the results are those of SciPy's csc_matvec on the same columns, to the bit.
 *
 * The callers (projection.py) pass C-contiguous arrays of the declared types; every index is still checked here,
 * since a wrong one would write outside an array. The GIL is released while the loops run.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    Py_buffer view;
    int held;
} Buffer;

static void release(Buffer *buffers, int count) {
    for (int i = 0; i < count; i++) {
        if (buffers[i].held) {
            PyBuffer_Release(&buffers[i].view);
            buffers[i].held = 0;
        }
    }
}

static int take(PyObject *object, Buffer *buffer, int writable, Py_ssize_t itemsize, const char *name) {
    if (PyObject_GetBuffer(object, &buffer->view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    buffer->held = 1;
    if (buffer->view.len % itemsize != 0) {
        PyErr_Format(PyExc_TypeError, "%s: a buffer of %zd-byte items was expected", name, itemsize);
        return -1;
    }
    return 0;
}

/* Takes the buffers of objects[0..count), writable where writable[i] is set; on failure releases what it took. */
static int take_all(PyObject **objects, Buffer *buffers, int count, const char *const *names, const Py_ssize_t *sizes, const int *writable) {
    for (int i = 0; i < count; i++) {
        if (take(objects[i], &buffers[i], writable[i], sizes[i], names[i]) < 0) {
            release(buffers, count);
            return -1;
        }
    }
    return 0;
}

#define ITEMS(buffer, type) ((Py_ssize_t)((buffer).view.len / (Py_ssize_t)sizeof(type)))

/* spread(indptr, indices, data, columns, values, sums, mark, reached, count) -> count
 *
 * For each of ``columns`` in order, adds data[e] * value to sums[indices[e]] for the column's entries e (float64), and
 * appends each row not yet marked to ``reached`` (marking it). Returns the new number of rows in ``reached``.
 * indptr, indices, columns: int32; data, values: float32; sums: float64; mark: uint8; reached: int32. */
static PyObject *spread(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[8];
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "OOOOOOOOn", &objects[0], &objects[1], &objects[2], &objects[3], &objects[4], &objects[5], &objects[6],
                          &objects[7], &count)) {
        return NULL;
    }
    Buffer b[8];
    memset(b, 0, sizeof b);
    static const char *const names[8] = {"indptr", "indices", "data", "columns", "values", "sums", "mark", "reached"};
    static const Py_ssize_t sizes[8] = {4, 4, 4, 4, 4, 8, 1, 4};
    static const int writable[8] = {0, 0, 0, 0, 0, 1, 1, 1};
    if (take_all(objects, b, 8, names, sizes, writable) < 0) {
        return NULL;
    }
    const int32_t *indptr = b[0].view.buf, *indices = b[1].view.buf, *columns = b[3].view.buf;
    const float *data = b[2].view.buf, *values = b[4].view.buf;
    double *sums = b[5].view.buf;
    uint8_t *mark = b[6].view.buf;
    int32_t *reached = b[7].view.buf;
    Py_ssize_t n_columns = ITEMS(b[0], int32_t) - 1, n_entries = ITEMS(b[1], int32_t), n_rows = ITEMS(b[5], double);
    Py_ssize_t n_active = ITEMS(b[3], int32_t), capacity = ITEMS(b[7], int32_t);
    const char *error = NULL;
    if (ITEMS(b[2], float) != n_entries || ITEMS(b[4], float) != n_active || ITEMS(b[6], uint8_t) != n_rows || count < 0 || count > capacity) {
        error = "spread: the arrays do not agree in length";
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; error == NULL && k < n_active; k++) {
        int32_t column = columns[k];
        if (column < 0 || column >= n_columns || indptr[column] < 0 || indptr[column] > indptr[column + 1] || indptr[column + 1] > n_entries) {
            error = "spread: a column outside the matrix";
            break;
        }
        double value = (double)values[k];
        for (int32_t e = indptr[column]; e < indptr[column + 1]; e++) {
            int32_t row = indices[e];
            if (row < 0 || row >= n_rows) {
                error = "spread: an entry's row outside the sums";
                break;
            }
            sums[row] += (double)data[e] * value;
            if (!mark[row]) {
                if (count >= capacity) {
                    error = "spread: more rows reached than room for them";
                    break;
                }
                mark[row] = 1;
                reached[count++] = row;
            }
        }
    }
    Py_END_ALLOW_THREADS
    release(b, 8);
    if (error != NULL) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return PyLong_FromSsize_t(count);
}

/* collect(sums, mark, reached, count, factor, tolerance, rows_out, values_out, scores) -> k
 *
 * For each reached row, its score after the step is (float)sums[row] * factor (float32 arithmetic, as numpy computes
 * it). With ``scores`` (float32, one per row), every score is written there and sums and mark are cleared. Without
 * (None), the rows whose score is at least ``tolerance`` go to rows_out/values_out in reached order, their number is
 * returned, and sums and mark are left for ``clear`` or a call with scores. sums: float64; mark: uint8; reached,
 * rows_out: int32; values_out: float32. */
static PyObject *collect(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[6];
    Py_ssize_t count;
    float factor, tolerance;
    if (!PyArg_ParseTuple(args, "OOOnffOOO", &objects[0], &objects[1], &objects[2], &count, &factor, &tolerance, &objects[3], &objects[4],
                          &objects[5])) {
        return NULL;
    }
    int with_scores = objects[5] != Py_None;
    Buffer b[6];
    memset(b, 0, sizeof b);
    static const char *const names[6] = {"sums", "mark", "reached", "rows_out", "values_out", "scores"};
    static const Py_ssize_t sizes[6] = {8, 1, 4, 4, 4, 4};
    static const int writable[6] = {1, 1, 0, 1, 1, 1};
    if (take_all(objects, b, with_scores ? 6 : 5, names, sizes, writable) < 0) {
        return NULL;
    }
    double *sums = b[0].view.buf;
    uint8_t *mark = b[1].view.buf;
    const int32_t *reached = b[2].view.buf;
    int32_t *rows_out = b[3].view.buf;
    float *values_out = b[4].view.buf, *scores = with_scores ? b[5].view.buf : NULL;
    Py_ssize_t n_rows = ITEMS(b[0], double), room = ITEMS(b[3], int32_t), kept = 0;
    const char *error = NULL;
    if (ITEMS(b[1], uint8_t) != n_rows || count < 0 || count > ITEMS(b[2], int32_t) || (with_scores && ITEMS(b[5], float) != n_rows)
        || ITEMS(b[4], float) != room) {
        error = "collect: the arrays do not agree in length";
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; error == NULL && i < count; i++) {
        int32_t row = reached[i];
        if (row < 0 || row >= n_rows) {
            error = "collect: a reached row outside the sums";
            break;
        }
        float score = (float)sums[row];
        score *= factor;
        if (with_scores) {
            scores[row] = score;
            sums[row] = 0.0;
            mark[row] = 0;
        } else if (score >= tolerance) {
            if (kept >= room) {
                error = "collect: more rows kept than room for them";
                break;
            }
            rows_out[kept] = row;
            values_out[kept] = score;
            kept++;
        }
    }
    Py_END_ALLOW_THREADS
    release(b, 6);
    if (error != NULL) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return PyLong_FromSsize_t(kept);
}

/* clear(sums, mark, reached, count): zero the sums and marks of the reached rows, for the next step. */
static PyObject *clear(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[3];
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "OOOn", &objects[0], &objects[1], &objects[2], &count)) {
        return NULL;
    }
    Buffer b[3];
    memset(b, 0, sizeof b);
    static const char *const names[3] = {"sums", "mark", "reached"};
    static const Py_ssize_t sizes[3] = {8, 1, 4};
    static const int writable[3] = {1, 1, 0};
    if (take_all(objects, b, 3, names, sizes, writable) < 0) {
        return NULL;
    }
    double *sums = b[0].view.buf;
    uint8_t *mark = b[1].view.buf;
    const int32_t *reached = b[2].view.buf;
    Py_ssize_t n_rows = ITEMS(b[0], double);
    const char *error = NULL;
    if (ITEMS(b[1], uint8_t) != n_rows || count < 0 || count > ITEMS(b[2], int32_t)) {
        error = "clear: the arrays do not agree in length";
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; error == NULL && i < count; i++) {
        int32_t row = reached[i];
        if (row < 0 || row >= n_rows) {
            error = "clear: a reached row outside the sums";
            break;
        }
        sums[row] = 0.0;
        mark[row] = 0;
    }
    Py_END_ALLOW_THREADS
    release(b, 3);
    if (error != NULL) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"spread", spread, METH_VARARGS, "Add the given columns' entries times their values into sums; record the rows newly reached."},
    {"collect", collect, METH_VARARGS, "Read back the rows a step reached: the ones passing a score on, or all into scores (clearing them)."},
    {"clear", clear, METH_VARARGS, "Zero the sums and marks of the rows a step reached."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", "Inner loops of a sparse PageRank step.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
