/* The lookup index's terms, compiled: the (hash, _seq) entries of an Arrow batch's text columns.
 *
 * collector/store/lookup_index.py is the only caller and describes the index; its SQL statement
 * (terms_sql: lower, replace 'ſ', regexp_extract_all '[0-9a-z]{8,}', distinct per row, a digit, no
 * leading STOP_ZEROS zeros, DuckDB's hash)
 * is the reference, and tests/kql/test_lookup_terms_compiled.py holds the two to the same
 * entries. What this reproduces, byte for byte:
 * - the text: a string column's value; a dynamic column's `->> '$'` text, which for the values
 *   `dynamic_safe` accepts has the same terms as the stored JSON text (a value it refuses makes
 *   the whole row the SQL statement's, by the row index this returns);
 * - DuckDB's `lower` as far as it can make a term character: A-Z, and the only two non-ASCII
 *   characters it lowers to ASCII (U+0130 to 'i', the Kelvin sign U+212A to 'k'), plus the
 *   statement's 'ſ' (U+017F) to 's'; every other byte ends a run;
 * - DuckDB's string `hash` (HashBytes: 8-byte blocks, then MurmurHash64's finalizer), checked
 *   against DuckDB's own at open (lookup_index._compiled), which falls back to the SQL statement
 *   on any difference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const uint64_t MULT = 0xd6e8feb86659fd93ULL;

static uint64_t duck_hash(const unsigned char *p, size_t n) {
    uint64_t h = 0xe17a1465ULL ^ ((uint64_t)n * 0xc6a4a7935bd1e995ULL);
    size_t rest = n & 7, i = 0;
    for (; i < n - rest; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= w;
        h *= MULT;
    }
    if (rest) {
        uint64_t w = 0;
        memcpy(&w, p + i, rest);
        h ^= w;
        h *= MULT;
    }
    h ^= h >> 32;
    h *= MULT;
    h ^= h >> 32;
    h *= MULT;
    h ^= h >> 32;
    return h;
}

typedef struct {
    uint64_t *h;
    int64_t *seq;
    Py_ssize_t len, cap;
    unsigned char *term; /* the run being read, lowered */
    Py_ssize_t term_cap;
} Out;

static int out_put(Out *o, uint64_t h, int64_t seq) {
    if (o->len == o->cap) {
        Py_ssize_t cap = o->cap ? o->cap * 2 : 4096;
        uint64_t *nh = realloc(o->h, cap * sizeof(uint64_t));
        if (!nh) return -1;
        o->h = nh;
        int64_t *ns = realloc(o->seq, cap * sizeof(int64_t));
        if (!ns) return -1;
        o->seq = ns;
        o->cap = cap;
    }
    o->h[o->len] = h;
    o->seq[o->len] = seq;
    o->len++;
    return 0;
}

/* TERM_CHAR[c]: the lowered term character of ASCII byte c, 1 for the lead bytes of the three
   non-ASCII characters that can lower to one (checked below), 0 for a byte that ends a run. */
static unsigned char TERM_CHAR[256];

static void init_term_chars(void) {
    for (int c = '0'; c <= '9'; c++) TERM_CHAR[c] = (unsigned char)c;
    for (int c = 'a'; c <= 'z'; c++) TERM_CHAR[c] = (unsigned char)c;
    for (int c = 'A'; c <= 'Z'; c++) TERM_CHAR[c] = (unsigned char)(c + 32);
    TERM_CHAR[0xC4] = TERM_CHAR[0xC5] = TERM_CHAR[0xE2] = 1;
}

/* Whether a term starts with stop_zeros zeros (<= min_term): a zero-padded counter, never indexed. */
static int zero_padded(const unsigned char *term, Py_ssize_t stop_zeros) {
    for (Py_ssize_t i = 0; i < stop_zeros; i++)
        if (term[i] != '0') return 0;
    return 1;
}

/* The entries of one value's text: every maximal run of term characters at least min_term long
   holding a digit, but those zero_padded. -1: out of memory. */
static int scan_text(const unsigned char *p, Py_ssize_t n, int64_t seq, Out *o, Py_ssize_t min_term, Py_ssize_t stop_zeros) {
    if (n > o->term_cap) {
        unsigned char *t = realloc(o->term, n);
        if (!t) return -1;
        o->term = t;
        o->term_cap = n;
    }
    unsigned char *term = o->term;
    Py_ssize_t len = 0, i = 0;
    int digit = 0;
    while (i <= n) {
        unsigned char t = i < n ? TERM_CHAR[p[i]] : 0;
        Py_ssize_t width = 1;
        if (t == 1) {
            unsigned char c = p[i];
            t = 0;
            if (c == 0xC4 && i + 1 < n && p[i + 1] == 0xB0) { t = 'i'; width = 2; }
            else if (c == 0xC5 && i + 1 < n && p[i + 1] == 0xBF) { t = 's'; width = 2; }
            else if (c == 0xE2 && i + 2 < n && p[i + 1] == 0x84 && p[i + 2] == 0xAA) { t = 'k'; width = 3; }
        }
        if (t) {
            term[len++] = t;
            digit |= t <= '9';
        } else {
            if (len >= min_term && digit && !zero_padded(term, stop_zeros) && out_put(o, duck_hash(term, len), seq) < 0)
                return -1;
            len = 0;
            digit = 0;
        }
        i += width;
    }
    return 0;
}

static int compare_hashes(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Keep one entry per distinct term of a row (entries from `mark` on): a row's ids repeat (an
   operation id inside its parent id, an id in a dimension), and each entry costs its insert and
   its move into a run; the statement does the same (list_distinct). */
static void distinct_row(Out *o, Py_ssize_t mark) {
    Py_ssize_t n = o->len - mark, kept = 0;
    uint64_t *h = o->h + mark;
    if (n < 2) return;
    if (n > 16) {
        qsort(h, n, sizeof(uint64_t), compare_hashes);
        for (Py_ssize_t i = 0; i < n; i++)
            if (i == 0 || h[i] != h[kept - 1]) h[kept++] = h[i];
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t j = 0;
            while (j < kept && h[j] != h[i]) j++;
            if (j == kept) h[kept++] = h[i];
        }
    }
    o->len = mark + kept; /* the row's seqs are all the same */
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Whether a number token with a fraction is as DuckDB renders it: the shortest digits that read
   back to its double, in fixed notation (DuckDB renders `2.50` as `2.5`, `1e7` as `10000000.0`).
   Its form is checked here: fixed notation between 1e-5 and 1e16 (where orjson and Python's repr
   write it so, and DuckDB renders it alike: tests/kql/test_lookup_terms_compiled.py), no trailing
   zero but `.0`'s, at most 17 significant digits. Up to 15 digits that form is the shortest
   (two decimals of 15 digits never read as one double); with 16 or 17 it is the shortest as every
   writer of the store writes it: a dynamic value's number is never the sender's text but the
   parsed double written again, by orjson (values.dumps_dynamic) or the compiled path's
   emitter (Python's repr), both shortest. Checking that here (strtod and dtoa per number) cost
   more than the whole index. */
static int canonical_fraction(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t i = p[0] == '-', dot = -1;
    for (Py_ssize_t j = i; j < n; j++)
        if (p[j] == '.') dot = j;
    if (dot < 0 || dot == i || dot == n - 1) return 0;
    Py_ssize_t int_digits = dot - i, frac = n - dot - 1;
    if (int_digits > 16 || (p[n - 1] == '0' && frac != 1)) return 0;
    Py_ssize_t significant;
    if (int_digits == 1 && p[i] == '0') {
        Py_ssize_t zeros = 0;
        while (zeros < frac && p[dot + 1 + zeros] == '0') zeros++;
        if (zeros >= 5) return 0; /* below 1e-5: orjson writes an exponent */
        significant = frac - zeros;
    } else if (frac == 1 && p[n - 1] == '0') {
        Py_ssize_t end = dot;
        while (end > i + 1 && p[end - 1] == '0') end--;
        significant = end - i;
    } else {
        significant = int_digits + frac;
    }
    return significant <= 17;
}

/* Whether the terms of a stored JSON text are those of DuckDB's `->> '$'` text of it. That text
   re-renders the value: a top-level string unescaped, `\uXXXX` escapes decoded (but the control
   characters'), numbers with a fraction or an exponent in
   their shortest form (`1e7` reads `10000000.0`, `1e+25` `1e25`); integers, the short escapes,
   whitespace between tokens and raw UTF-8 keep their terms. So: no top-level string with an
   escape, no `\u` escape, no exponent, every fraction already in its shortest fixed form. */
static int dynamic_safe(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n && is_ws(p[i])) i++;
    if (i < n && p[i] == '"') return memchr(p + i, '\\', n - i) == NULL;
    int in_string = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\') {
                if (i + 1 < n && p[i + 1] == 'u') return 0;
                i++;
            } else if (c == '"') {
                in_string = 0;
            }
            i++;
        } else if (c == '"') {
            in_string = 1;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            Py_ssize_t start = i;
            int fraction = 0;
            while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '+' || p[i] == '.' ||
                             p[i] == 'e' || p[i] == 'E')) {
                if (p[i] == 'e' || p[i] == 'E') return 0;
                fraction |= p[i] == '.';
                i++;
            }
            if (fraction && !canonical_fraction(p + start, i - start)) return 0;
        } else {
            i++;
        }
    }
    return 1;
}

typedef struct {
    Py_buffer validity, offsets, data;
    int has_validity, dynamic;
    Py_ssize_t offset;
} Column;

static int valid(const Column *c, Py_ssize_t row) {
    if (!c->has_validity) return 1;
    Py_ssize_t bit = c->offset + row;
    return (((const unsigned char *)c->validity.buf)[bit >> 3] >> (bit & 7)) & 1;
}

/* terms(columns, rows, seqs, seq_offset, min_term, stop_zeros) -> (hashes, seqs, unsafe rows) */
static PyObject *terms(PyObject *self, PyObject *args) {
    PyObject *list;
    Py_ssize_t rows, seq_offset, min_term, stop_zeros;
    Py_buffer seqs;
    if (!PyArg_ParseTuple(args, "O!ny*nnn", &PyList_Type, &list, &rows, &seqs, &seq_offset, &min_term, &stop_zeros))
        return NULL;
    Py_ssize_t ncols = PyList_GET_SIZE(list);
    Column *cols = PyMem_Calloc(ncols ? ncols : 1, sizeof(Column));
    PyObject *result = NULL;
    Out out = {0};
    int64_t *unsafe = NULL;
    Py_ssize_t nunsafe = 0, k = 0;
    if (!cols) { PyErr_NoMemory(); goto done; }
    if (stop_zeros < 1 || stop_zeros > min_term) {
        PyErr_SetString(PyExc_ValueError, "stop_zeros must be within 1..min_term");
        goto done;
    }
    if (rows < 0 || seq_offset < 0 || (Py_ssize_t)(seqs.len / 8) < seq_offset + rows) {
        PyErr_SetString(PyExc_ValueError, "seqs too short for the rows");
        goto done;
    }
    for (; k < ncols; k++) {
        PyObject *v, *o, *d;
        Column *c = &cols[k];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, k), "OOOnp", &v, &o, &d, &c->offset, &c->dynamic)) goto done;
        if (PyObject_GetBuffer(o, &c->offsets, PyBUF_SIMPLE) < 0) goto done;
        if (PyObject_GetBuffer(d, &c->data, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&c->offsets); goto done; }
        if (v != Py_None) {
            if (PyObject_GetBuffer(v, &c->validity, PyBUF_SIMPLE) < 0) {
                PyBuffer_Release(&c->offsets);
                PyBuffer_Release(&c->data);
                goto done;
            }
            c->has_validity = 1;
        }
        Py_ssize_t need_bits = (c->offset + rows + 7) / 8;
        if (c->offset < 0 || c->offsets.len / 4 < c->offset + rows + 1 || (c->has_validity && c->validity.len < need_bits)) {
            PyErr_SetString(PyExc_ValueError, "a column's buffers are shorter than its rows");
            k++;
            goto done;
        }
    }
    unsafe = PyMem_Malloc((rows ? rows : 1) * sizeof(int64_t));
    if (!unsafe) { PyErr_NoMemory(); goto done; }
    int failed = 0, bad_offsets = 0;
    Py_BEGIN_ALLOW_THREADS
    const int64_t *seq = (const int64_t *)seqs.buf + seq_offset;
    for (Py_ssize_t r = 0; r < rows && !failed && !bad_offsets; r++) {
        Py_ssize_t mark = out.len;
        int refused = 0;
        for (Py_ssize_t j = 0; j < ncols && !refused; j++) {
            const Column *c = &cols[j];
            if (!valid(c, r)) continue;
            const int32_t *off = (const int32_t *)c->offsets.buf + c->offset + r;
            if (off[0] < 0 || off[1] < off[0] || off[1] > c->data.len) { bad_offsets = 1; break; }
            const unsigned char *p = (const unsigned char *)c->data.buf + off[0];
            Py_ssize_t n = off[1] - off[0];
            if (c->dynamic && !dynamic_safe(p, n)) { refused = 1; break; }
            if (scan_text(p, n, seq[r], &out, min_term, stop_zeros) < 0) { failed = 1; break; }
        }
        if (refused) {
            out.len = mark;
            unsafe[nunsafe++] = r;
        } else {
            distinct_row(&out, mark);
        }
    }
    Py_END_ALLOW_THREADS
    if (failed) { PyErr_NoMemory(); goto done; }
    if (bad_offsets) { PyErr_SetString(PyExc_ValueError, "a column's offsets are out of range"); goto done; }
    result = Py_BuildValue("(y#y#y#)", out.h ? (const char *)out.h : "", out.len * (Py_ssize_t)sizeof(uint64_t),
                           out.seq ? (const char *)out.seq : "", out.len * (Py_ssize_t)sizeof(int64_t),
                           (const char *)unsafe, nunsafe * (Py_ssize_t)sizeof(int64_t));
done:
    for (Py_ssize_t j = 0; j < k && cols; j++) {
        if (cols[j].offsets.obj) PyBuffer_Release(&cols[j].offsets);
        if (cols[j].data.obj) PyBuffer_Release(&cols[j].data);
        if (cols[j].has_validity) PyBuffer_Release(&cols[j].validity);
    }
    PyMem_Free(cols);
    PyMem_Free(unsafe);
    free(out.h);
    free(out.seq);
    free(out.term);
    PyBuffer_Release(&seqs);
    return result;
}

static PyObject *hash_bytes(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view)) return NULL;
    uint64_t h = duck_hash(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

static PyMethodDef METHODS[] = {
    {"terms", terms, METH_VARARGS,
     "terms(columns, rows, seqs, seq_offset, min_term, stop_zeros) -> (hashes, seqs, unsafe_rows): the lookup entries of "
     "Arrow string columns, each (validity or None, offsets, data, offset, dynamic)."},
    {"hash", hash_bytes, METH_VARARGS, "hash(data) -> DuckDB's hash of a VARCHAR holding these bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_lookup_terms", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__lookup_terms(void) {
    init_term_chars();
    PyObject *module = PyModule_Create(&MODULE);
    /* The entries' form, which lookup_index.compiled_matches checks: a module built from an older
       source (other arguments, other entries) is then left unused rather than called wrongly. */
    if (module && PyModule_AddIntConstant(module, "FORM", 2) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
