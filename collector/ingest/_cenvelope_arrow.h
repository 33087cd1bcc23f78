/* Part of the compiled fast path: a table's rows handed to pyarrow through the Arrow C data interface.
 * Included once, by _cenvelope.c (one translation unit: every function stays static).
 *
 * Wrapping each column's buffers in Python (pa.py_buffer, pa.Array.from_buffers, then
 * pa.Table.from_arrays over the table's ~40 columns) cost ~110 µs per table of a body, held the
 * GIL, and copied every buffer into a bytes object first. Here a table's buffers become one
 * ArrowArray (a struct of the schema's columns, in its order) that pyarrow imports in one call
 * (RecordBatch._import_from_c with the table's schema): no copy, no Python object per column.
 *
 * What fills each column is compiled.py's to say (set_layout, once per table at its import), from
 * the stored form's rules (stored_form.py): one of this file's columns, a constant, the service's
 * name, or nulls. The buffers are freed by the release callback, on whichever thread drops the
 * last Arrow reference to them: no Python object is involved, so no GIL is needed there. */
#ifndef _CENVELOPE_ARROW_H
#define _CENVELOPE_ARROW_H

#include <stdatomic.h>

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};
#endif

/* ---------- what fills each column of a table: compiled.py's layout ---------- */

/* This file's columns beyond the string ones (STR_NAMES, TAG_COLUMN_NAMES), by number after them. */
enum { C_TIMESTAMP = NSTR, C_SEVERITY, C_DURATION, C_SUCCESS, C_VALUE, C_VALUE_COUNT, NCOLUMNS };
static const char *EXTRA_NAMES[NCOLUMNS - NSTR] = {"timestamp", "severityLevel", "duration", "success", "value", "valueCount"};

/* A column's physical type, as compiled.py names it: string, int32, int64 (timestamps), float64, bool. */
static const char KINDS[] = "sildb";
enum { K_STRING, K_INT32, K_INT64, K_FLOAT64, K_BOOL };
static const int EXTRA_KINDS[NCOLUMNS - NSTR] = {K_INT64, K_INT32, K_FLOAT64, K_BOOL, K_FLOAT64, K_INT32};

enum { SRC_NULL, SRC_COLUMN, SRC_TEXT, SRC_INT32, SRC_FLOAT64, SRC_SERVICE };
static const char *SOURCE_NAMES[] = {"null", "column", "text", "int32", "float64", "service"};
#define NSOURCES 6

typedef struct {
    int kind, source;
    int column;             /* SRC_COLUMN: which of this file's columns */
    char *text;             /* SRC_TEXT's value, or SRC_COLUMN's text for its nulls (NULL: they stay null) */
    Py_ssize_t text_len;
    int32_t int32;
    double float64;
} Field;

typedef struct {
    int n;
    Field *fields;
} Layout;

static Layout LAYOUTS[NTABLES];

static int column_kind(int column) { return column < NSTR ? K_STRING : EXTRA_KINDS[column - NSTR]; }

static const char *column_name(int k) {
    return k < NTAGS ? TAG_COLUMN_NAMES[k] : k < NSTR ? STR_NAMES[k - NTAGS] : EXTRA_NAMES[k - NSTR];
}

static int column_named(const char *name) {
    for (int k = 0; k < NCOLUMNS; k++)
        if (strcmp(column_name(k), name) == 0) return k;
    return -1;
}

/* Whether a table's rows write this column at all (push_row): another table's column is nulls. */
static int table_fills(int table, int column) {
    switch (column) {
    case C_SEVERITY: return table == TB_TRACES || table == TB_EXCEPTIONS;
    case C_DURATION: case C_SUCCESS: return table == TB_REQUESTS || table == TB_DEPENDENCIES;
    case C_VALUE: case C_VALUE_COUNT: return table == TB_METRICS;
    default: return 1;
    }
}

static void layout_free(Layout *layout) {
    for (int k = 0; k < layout->n; k++) free(layout->fields[k].text);
    free(layout->fields);
    layout->n = 0;
    layout->fields = NULL;
}

static int text_of(PyObject *value, Field *field) {
    Py_ssize_t len;
    const char *text = PyUnicode_AsUTF8AndSize(value, &len);
    if (!text) return -1;
    field->text = malloc(len + 1);
    if (!field->text) { PyErr_NoMemory(); return -1; }
    memcpy(field->text, text, len + 1);
    field->text_len = len;
    return 0;
}

/* One column's (kind, source, argument), as compiled.py writes it; -1 with an exception if not understood. */
static int field_of(PyObject *spec, int table, Field *field) {
    const char *kind, *source;
    PyObject *arg;
    if (!PyArg_ParseTuple(spec, "ssO", &kind, &source, &arg)) return -1;
    const char *at = strchr(KINDS, kind[0]);
    if (!kind[0] || kind[1] || !at) { PyErr_Format(PyExc_ValueError, "unknown column kind %s", kind); return -1; }
    field->kind = (int)(at - KINDS);
    field->source = -1;
    for (int k = 0; k < NSOURCES; k++)
        if (strcmp(source, SOURCE_NAMES[k]) == 0) field->source = k;
    int expected = field->kind;
    switch (field->source) {
    case SRC_NULL: case SRC_SERVICE: expected = field->source == SRC_SERVICE ? K_STRING : field->kind; break;
    case SRC_TEXT: expected = K_STRING; if (text_of(arg, field) < 0) return -1; break;
    case SRC_INT32:
        expected = K_INT32;
        field->int32 = (int32_t)PyLong_AsLong(arg);
        if (PyErr_Occurred()) return -1;
        break;
    case SRC_FLOAT64:
        expected = K_FLOAT64;
        field->float64 = PyFloat_AsDouble(arg);
        if (PyErr_Occurred()) return -1;
        break;
    case SRC_COLUMN: {
        /* a column's name, or (name, the text of its nulls) */
        PyObject *name = arg, *fill = NULL;
        if (PyTuple_Check(arg) && !PyArg_ParseTuple(arg, "UU", &name, &fill)) return -1;
        const char *text = PyUnicode_AsUTF8(name);
        if (!text) return -1;
        field->column = column_named(text);
        if (field->column < 0) { PyErr_Format(PyExc_ValueError, "no column %s", text); return -1; }
        if (!table_fills(table, field->column)) field->source = SRC_NULL;
        else expected = column_kind(field->column);
        if (fill && (expected != K_STRING || text_of(fill, field) < 0)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "only a string column's nulls take a text");
            return -1;
        }
        break;
    }
    default: PyErr_Format(PyExc_ValueError, "unknown column source %s", source); return -1;
    }
    if (expected != field->kind) { PyErr_Format(PyExc_TypeError, "the %s source does not fill a column of kind %s", source, kind); return -1; }
    return 0;
}

/* set_layout(table, fields): what fills each column of the table's Arrow schema, in its order. */
static PyObject *set_layout(PyObject *self, PyObject *args) {
    const char *name;
    PyObject *specs;
    if (!PyArg_ParseTuple(args, "sO!", &name, &PyTuple_Type, &specs)) return NULL;
    int table = -1;
    for (int k = 0; k < NTABLES; k++)
        if (strcmp(TABLE_NAMES[k], name) == 0) table = k;
    if (table < 0) return PyErr_Format(PyExc_ValueError, "no table %s", name);
    Layout layout = {(int)PyTuple_GET_SIZE(specs), calloc(PyTuple_GET_SIZE(specs) + 1, sizeof(Field))};
    if (!layout.fields) return PyErr_NoMemory();
    for (int k = 0; k < layout.n; k++)
        if (field_of(PyTuple_GET_ITEM(specs, k), table, &layout.fields[k]) < 0) { layout_free(&layout); return NULL; }
    layout_free(&LAYOUTS[table]);
    LAYOUTS[table] = layout;
    Py_RETURN_NONE;
}

/* ---------- a table's rows as one ArrowArray ---------- */

/* The buffers of one exported table, freed when the parent and every child are released. */
typedef struct {
    atomic_int refs;
    Table tb;
    char *zeros;   /* zeroed: every null column's validity, offsets and values; a 0.0 column's values */
    Buf *made;     /* two per column: the buffers made here (constants, a string column's filled nulls) */
    int n;
    struct ArrowArray *children;
    struct ArrowArray **child_ptrs;
    const void **buffers; /* three per child, then the parent's one */
} Export;

static void export_unref(Export *ex) {
    if (atomic_fetch_sub(&ex->refs, 1) != 1) return;
    table_free(&ex->tb);
    for (int k = 0; k < 2 * ex->n; k++) buf_free(&ex->made[k]);
    free(ex->made);
    free(ex->zeros);
    free(ex->children);
    free(ex->child_ptrs);
    free(ex->buffers);
    free(ex);
}

static void child_release(struct ArrowArray *array) {
    Export *ex = array->private_data;
    array->release = NULL;
    export_unref(ex);
}

static void parent_release(struct ArrowArray *array) {
    for (int64_t k = 0; k < array->n_children; k++) {
        struct ArrowArray *child = array->children[k];
        if (child->release) child->release(child);
    }
    Export *ex = array->private_data;
    array->release = NULL;
    export_unref(ex);
}

/* The same text in each of n rows: offsets and data. */
static int repeat_text(Buf *offsets, Buf *data, const char *text, Py_ssize_t len, Py_ssize_t n) {
    if ((Py_ssize_t)len * n > INT32_MAX) { PyErr_SetString(PyExc_OverflowError, "column too large"); return -1; }
    if (buf_reserve(offsets, 4 * (n + 1)) < 0 || buf_reserve(data, len * n + 1) < 0) { PyErr_NoMemory(); return -1; }
    int32_t *ends = (int32_t *)offsets->p;
    for (Py_ssize_t r = 0; r <= n; r++) ends[r] = (int32_t)(len * r);
    for (Py_ssize_t r = 0; r < n; r++) memcpy(data->p + len * r, text, len);
    offsets->len = 4 * (n + 1);
    data->len = len * n;
    return 0;
}

/* A string column with its nulls replaced by a text (pc.fill_null). */
static int filled_text(Buf *offsets, Buf *data, StrCol *c, const char *text, Py_ssize_t len, Py_ssize_t n) {
    const int32_t *ends = (const int32_t *)c->offsets.p;
    const unsigned char *bits = (const unsigned char *)c->bits.p;
    if ((int64_t)c->data.len + (int64_t)len * c->nulls > INT32_MAX) { PyErr_SetString(PyExc_OverflowError, "column too large"); return -1; }
    if (buf_reserve(offsets, 4 * (n + 1)) < 0 || buf_reserve(data, c->data.len + len * c->nulls + 1) < 0) { PyErr_NoMemory(); return -1; }
    int32_t *out = (int32_t *)offsets->p;
    out[0] = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        int valid = (bits[r / 8] >> (r % 8)) & 1;
        const char *p = valid ? c->data.p + ends[r] : text;
        Py_ssize_t size = valid ? ends[r + 1] - ends[r] : len;
        memcpy(data->p + data->len, p, size);
        data->len += size;
        out[r + 1] = (int32_t)data->len;
    }
    offsets->len = 4 * (n + 1);
    return 0;
}

/* Fills one child; -1 with an exception. */
static int export_child(Export *ex, int k, const Field *field, const char *service, Py_ssize_t service_len) {
    Py_ssize_t n = ex->tb.n;
    struct ArrowArray *child = &ex->children[k];
    const void **bufs = &ex->buffers[3 * k];
    Buf *made = &ex->made[2 * k];
    *child = (struct ArrowArray){n, 0, 0, field->kind == K_STRING ? 3 : 2, 0, bufs, NULL, NULL, child_release, ex};
    ex->child_ptrs[k] = child;
    const char *zeros = ex->zeros;
    const char *text = field->text;
    Py_ssize_t text_len = field->text_len;
    int source = field->source;
    if (source == SRC_SERVICE) {
        text = service;
        text_len = service_len;
        source = service ? SRC_TEXT : SRC_NULL;
    }
    if (source == SRC_COLUMN && field->column < NSTR) {
        StrCol *c = &ex->tb.str[field->column];
        if (c->nulls == n && !text) source = SRC_NULL;
        else if (c->nulls == n) source = SRC_TEXT;
        else if (c->nulls && text) {
            if (filled_text(&made[0], &made[1], c, text, text_len, n) < 0) return -1;
            bufs[0] = NULL; bufs[1] = made[0].p; bufs[2] = made[1].p ? made[1].p : zeros;
            return 0;
        } else {
            child->null_count = c->nulls;
            bufs[0] = c->nulls ? c->bits.p : NULL; bufs[1] = c->offsets.p; bufs[2] = c->data.p ? c->data.p : zeros;
            return 0;
        }
    }
    switch (source) {
    case SRC_NULL:
        child->null_count = n;
        bufs[0] = bufs[1] = bufs[2] = zeros;
        return 0;
    case SRC_TEXT:
        if (repeat_text(&made[0], &made[1], text, text_len, n) < 0) return -1;
        bufs[0] = NULL; bufs[1] = made[0].p; bufs[2] = made[1].p;
        return 0;
    case SRC_INT32:
        if (buf_reserve(&made[0], 4 * n) < 0) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t r = 0; r < n; r++) ((int32_t *)made[0].p)[r] = field->int32;
        bufs[0] = NULL; bufs[1] = made[0].p;
        return 0;
    case SRC_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, &field->float64, 8);
        bufs[0] = NULL; bufs[1] = zeros;
        if (bits == 0) return 0; /* 0.0: all-zero bytes */
        if (buf_reserve(&made[0], 8 * n) < 0) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t r = 0; r < n; r++) ((double *)made[0].p)[r] = field->float64;
        bufs[1] = made[0].p;
        return 0;
    }
    }
    Table *tb = &ex->tb;
    bufs[0] = NULL;
    switch (field->column) {
    case C_TIMESTAMP: bufs[1] = tb->timestamp.p; break;
    case C_SEVERITY:
        child->null_count = tb->sev_nulls;
        bufs[0] = tb->sev_nulls ? tb->sev_bits.p : NULL; bufs[1] = tb->severity.p;
        break;
    case C_DURATION: bufs[1] = tb->duration.p; break;
    case C_SUCCESS: bufs[1] = tb->success.p; break;
    case C_VALUE: bufs[1] = tb->value.p; break;
    case C_VALUE_COUNT: bufs[1] = tb->count.p; break;
    }
    return 0;
}

/* Moves the table's buffers into a new Export and describes them in *out (a struct array of the
   layout's columns); -1 with an exception (the buffers then freed, unless no layout or memory). */
static int export_table(Table *tb, int which, const char *service, Py_ssize_t service_len, struct ArrowArray *out) {
    Layout *layout = &LAYOUTS[which];
    if (!layout->n) { PyErr_Format(PyExc_RuntimeError, "no layout set for %s", TABLE_NAMES[which]); return -1; }
    Export *ex = calloc(1, sizeof(Export));
    if (!ex) { PyErr_NoMemory(); return -1; }
    ex->tb = *tb;
    memset(tb, 0, sizeof(*tb));
    int n = ex->n = layout->n;
    atomic_init(&ex->refs, 1);
    ex->zeros = calloc(8 * (size_t)ex->tb.n + 8, 1);
    ex->made = calloc(2 * (size_t)n, sizeof(Buf));
    ex->children = calloc(n, sizeof(struct ArrowArray));
    ex->child_ptrs = calloc(n, sizeof(struct ArrowArray *));
    ex->buffers = calloc(3 * (size_t)n + 1, sizeof(void *));
    if (!ex->zeros || !ex->made || !ex->children || !ex->child_ptrs || !ex->buffers) {
        export_unref(ex);
        PyErr_NoMemory();
        return -1;
    }
    for (int k = 0; k < n; k++) {
        if (export_child(ex, k, &layout->fields[k], service, service_len) < 0) {
            atomic_store(&ex->refs, 1); /* no child was handed out: free it all at once */
            export_unref(ex);
            return -1;
        }
        atomic_fetch_add(&ex->refs, 1);
    }
    *out = (struct ArrowArray){ex->tb.n, 0, 0, 1, n, &ex->buffers[3 * n], ex->child_ptrs, NULL, parent_release, ex};
    return 0;
}

/* ---------- the Python side: a parsed table, then its export ---------- */

#define TABLE_CAPSULE "_cenvelope.table"

typedef struct {
    int which;
    Table tb;
} Parsed;

static void parsed_free(PyObject *capsule) {
    Parsed *parsed = PyCapsule_GetPointer(capsule, TABLE_CAPSULE);
    if (!parsed) { PyErr_Clear(); return; }
    table_free(&parsed->tb);
    free(parsed);
}

/* A capsule holding the table's buffers (moved out of *tb) until export() hands them to Arrow. */
static PyObject *parsed_capsule(Table *tb, int which) {
    Parsed *parsed = malloc(sizeof(Parsed));
    if (!parsed) return PyErr_NoMemory();
    parsed->which = which;
    parsed->tb = *tb;
    memset(tb, 0, sizeof(*tb));
    PyObject *capsule = PyCapsule_New(parsed, TABLE_CAPSULE, parsed_free);
    if (!capsule) { table_free(&parsed->tb); free(parsed); }
    return capsule;
}

static void array_capsule_free(PyObject *capsule) {
    struct ArrowArray *array = PyCapsule_GetPointer(capsule, "arrow_array");
    if (!array) { PyErr_Clear(); return; }
    if (array->release) array->release(array);
    free(array);
}

/* export(table, service) -> (arrow_array capsule, its address): the table's rows as a struct
   ArrowArray of its layout's columns, `service` (str, or None: nulls) in the service's columns.
   A table exports once: its buffers move to the ArrowArray. */
static PyObject *export(PyObject *self, PyObject *args) {
    PyObject *capsule;
    const char *service = NULL;
    Py_ssize_t service_len = 0;
    if (!PyArg_ParseTuple(args, "Oz#", &capsule, &service, &service_len)) return NULL;
    Parsed *parsed = PyCapsule_GetPointer(capsule, TABLE_CAPSULE);
    if (!parsed) return NULL;
    if (!parsed->tb.n) { PyErr_SetString(PyExc_ValueError, "this table was exported already"); return NULL; }
    struct ArrowArray *array = calloc(1, sizeof(struct ArrowArray));
    if (!array) return PyErr_NoMemory();
    if (export_table(&parsed->tb, parsed->which, service, service_len, array) < 0) { free(array); return NULL; }
    PyObject *out = PyCapsule_New(array, "arrow_array", array_capsule_free);
    if (!out) { array->release(array); free(array); return NULL; }
    return Py_BuildValue("(NK)", out, (unsigned long long)(uintptr_t)array);
}

#endif /* _CENVELOPE_ARROW_H */
