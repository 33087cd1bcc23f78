/* The compiled fast path of ingestion: a track body's plain envelopes straight to Arrow buffers.
 *
 * collector/ingest/compiled.py is its only caller and describes the contract; the pure-Python
 * path (columnar.py and envelope.py) is the reference, and tests/ingest/test_compiled_path.py
 * holds both to the same rows. This file only ever decides "take" (the item's column values are
 * exactly what the Python path stores) or "leave" (the item goes to the Python path, by its span
 * in the body); when in doubt, it leaves. It gives up on a whole body (returns None) wherever
 * orjson might read the body differently than this parser: invalid JSON or UTF-8, lone
 * surrogates, integers of more than 18 digits, numbers beyond a double, deep nesting.
 *
 * The parse holds no Python object and calls no Python API (malloc's buffers, strtod_l, its own
 * float repr: _cenvelope_float.h), so it releases the GIL: the collector prepares bodies in threads
 * (collector/ingest/threads.py) while its event loop and writer run.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_cenvelope_float.h"
#include "_cenvelope_json.h"
#include "_cenvelope_columns.h"
#include "_cenvelope_exceptions.h"
#include "_cenvelope_arrow.h"

/* The column of a tag's key (TAGS' index), or -1: its text read once, then only the tags of its
   length compared (a loop of key_is_n over the 19 tags was a tenth of the parse). */
static int tag_of(Item *it, int32_t k) {
    Tok *t = &it->toks[k];
    if (t->escaped) {
        for (int tag = 0; tag < NTAGS; tag++)
            if (key_is_n(it, k, TAGS[tag], TAG_LENGTHS[tag])) return tag;
        return -1;
    }
    Py_ssize_t len = t->end - t->start;
    const unsigned char *p = it->s + t->start;
    for (int tag = 0; tag < NTAGS; tag++)
        if (TAG_LENGTHS[tag] == len && same_bytes(p, TAGS[tag], len)) return tag;
    return -1;
}

/* 1: the row is filled; 0: leave the item to the Python path; -2: an error (parse_error). */
static int judge_item(Item *it, Row *row) {
    Tok *toks = it->toks;
    if (toks[0].type != T_OBJ) return 0;
    int32_t data = member(it, 0, "data");
    if (data < 0 || toks[data].type != T_OBJ) return 0;
    int32_t rate = member(it, 0, "sampleRate");
    if (rate >= 0 && toks[rate].type != T_NULL) {
        char text[64];
        if (toks[rate].type != T_INT && toks[rate].type != T_FLOAT) return 0;
        Py_ssize_t n = toks[rate].end - toks[rate].start;
        if (n >= 63) return 0;
        memcpy(text, it->s + toks[rate].start, n);
        text[n] = 0;
        if (to_double(text) != 100.0) return 0;
    }
    int32_t base_type = member(it, data, "baseType");
    if (base_type < 0 || toks[base_type].type != T_STR) return 0;
    row->table = -1;
    for (int k = 0; k < NTABLES; k++)
        if (key_is_n(it, base_type, BASE_TYPES[k], BASE_TYPE_LENGTHS[k])) row->table = k;
    int32_t base = member(it, data, "baseData");
    int32_t ikey = member(it, 0, "iKey");
    if (row->table < 0 || base < 0 || toks[base].type != T_OBJ || ikey < 0) return 0;
    for (int k = 0; k < NSTR; k++) row->str[k] = NO_STR;
    int r;
    if ((r = as_str(it, ikey, &row->str[S_IKEY])) != 1) return r == -2 ? -2 : 0;

    int32_t time = member(it, 0, "time");
    Str text;
    if (time < 0 || (r = as_str(it, time, &text)) != 1) return r == -2 ? -2 : 0;
    if (!parse_time(it->scratch.p + text.off, text.len, &row->timestamp)) return 0;

    int32_t tags = member(it, 0, "tags");
    if (tags >= 0 && toks[tags].type != T_NULL) {
        if (toks[tags].type != T_OBJ) return 0;
        int32_t k = tags + 1;
        for (int32_t n = 0; n < toks[tags].count; n++) {
            int tag = tag_of(it, k);
            if (tag >= 0) {
                Str value;
                if ((r = as_str(it, k + 1, &value)) < 0) return r == -2 ? -2 : 0;
                if (r == 1 && value.len > TAG_LIMIT) { /* characters: no more than its bytes */
                    Py_ssize_t chars = 0;
                    for (Py_ssize_t c = 0; c < value.len; c++)
                        chars += ((unsigned char)it->scratch.p[value.off + c] & 0xC0) != 0x80;
                    if (chars > TAG_LIMIT) return 0;
                }
                row->str[tag] = value; /* the last of a repeated key, as a dict keeps it */
            }
            k = toks[k + 1].next;
        }
    }

    Py_ssize_t size = 0;
    int table = row->table;
    /* customDimensions (and customMeasurements: none, or the Python path's) */
    int32_t props = member(it, base, "properties");
    if (table != TB_METRICS) {
        int32_t meas = member(it, base, "measurements");
        if (meas >= 0 && toks[meas].type != T_NULL && !(toks[meas].type == T_OBJ && toks[meas].count == 0)) return 0;
    }
    row->dims_off = it->scratch.len;
    if ((r = emit_dimensions(it, props, &it->scratch)) != 0) return r == -2 ? -2 : 0;
    row->dims_len = it->scratch.len - row->dims_off;
    size += row->dims_len;

    /* The string fields each table takes as they are (columnar._BASE_COLUMNS). */
#define FIELD(table, col, field, sized) {table, col, field, sizeof(field) - 1, sized}
    static const struct { int table; int col; const char *field; Py_ssize_t len; int sized; } FIELDS[] = {
        FIELD(TB_TRACES, S_MESSAGE, "message", 1),
        FIELD(TB_REQUESTS, S_ID, "id", 0), FIELD(TB_REQUESTS, S_NAME, "name", 1), FIELD(TB_REQUESTS, S_URL, "url", 1),
        FIELD(TB_REQUESTS, S_SOURCE, "source", 0),
        FIELD(TB_DEPENDENCIES, S_ID, "id", 0), FIELD(TB_DEPENDENCIES, S_NAME, "name", 1), FIELD(TB_DEPENDENCIES, S_DATA, "data", 1),
        FIELD(TB_DEPENDENCIES, S_TARGET, "target", 0), FIELD(TB_DEPENDENCIES, S_CODE, "resultCode", 0),
        FIELD(TB_DEPENDENCIES, S_TYPE, "type", 1),
        FIELD(TB_EVENTS, S_NAME, "name", 1),
    };
#undef FIELD
    for (size_t f = 0; f < sizeof(FIELDS) / sizeof(FIELDS[0]); f++) {
        if (FIELDS[f].table != table) continue;
        int32_t v = member_n(it, base, FIELDS[f].field, FIELDS[f].len);
        if (v >= 0 && (r = as_str(it, v, &row->str[FIELDS[f].col])) < 0) return r == -2 ? -2 : 0;
        if (FIELDS[f].sized && row->str[FIELDS[f].col].len > 0) size += row->str[FIELDS[f].col].len;
    }
    if ((table == TB_TRACES && row->str[S_MESSAGE].len < 0) || (table == TB_EVENTS && row->str[S_NAME].len < 0)) return 0;
    if (table == TB_DEPENDENCIES) {
        int32_t v = member(it, base, "dependencyTypeName");
        Str type_name = NO_STR;
        if (v >= 0 && (r = as_str(it, v, &type_name)) < 0) return r == -2 ? -2 : 0;
        if (type_name.len > 0) size += type_name.len;
        if (row->str[S_TYPE].len < 0) row->str[S_TYPE] = type_name;
    }

    if (table == TB_EXCEPTIONS && (r = judge_exception(it, base, row, &size)) != 1) return r;
    if (table == TB_TRACES || table == TB_EXCEPTIONS) {
        int32_t v = member(it, base, "severityLevel");
        row->severity = -1;
        if (v >= 0 && toks[v].type != T_NULL) {
            if (toks[v].type != T_INT || toks[v].end - toks[v].start != 1) return 0;
            char c = (char)it->s[toks[v].start];
            if (c < '0' || c > '4') return 0;
            row->severity = c - '0';
        }
    }
    if (table == TB_REQUESTS || table == TB_DEPENDENCIES) {
        int32_t v = member(it, base, "duration");
        Str duration;
        if (v < 0 || (r = as_str(it, v, &duration)) != 1) return r == -2 ? -2 : 0;
        if (!parse_duration(it->scratch.p + duration.off, duration.len, &row->duration)) return 0;
        const char *bucket = performance_bucket(row->duration);
        row->str[S_BUCKET].off = -1; /* a constant: see push_row */
        row->str[S_BUCKET].len = (Py_ssize_t)strlen(bucket);
        row->value = 0;
        int32_t ok = member(it, base, "success");
        row->success = 1;
        if (ok >= 0 && toks[ok].type != T_NULL) {
            if (toks[ok].type == T_FALSE) row->success = 0;
            else if (toks[ok].type != T_TRUE) return 0;
        }
        if (table == TB_REQUESTS) {
            int32_t code = member(it, base, "responseCode");
            if (code < 0) code = member(it, base, "resultCode");
            if (code < 0 || (r = as_str(it, code, &row->str[S_CODE])) != 1) return r == -2 ? -2 : 0;
            Str c = row->str[S_CODE];
            if (c.len == 1 && it->scratch.p[c.off] == '0') return 0; /* azmlinfsrv's: quirks.py corrects it */
        }
    }
    if (table == TB_METRICS) {
        int32_t metrics = member(it, base, "metrics");
        if (metrics < 0 || toks[metrics].type != T_ARR || toks[metrics].count != 1) return 0;
        int32_t metric = metrics + 1;
        if (toks[metric].type != T_OBJ) return 0;
        int32_t name = member(it, metric, "name");
        if (name < 0 || (r = as_str(it, name, &row->str[S_NAME])) != 1) return r == -2 ? -2 : 0;
        Str nm = row->str[S_NAME];
        const char *p = it->scratch.p + nm.off;
        static const char *SDK[] = {"_OTELRESOURCE_", "Item_Success_Count", "Item_Dropped_Count", "Item_Retry_Count"};
        if (nm.len > 0 && p[0] == '\\') return 0;
        for (int k = 0; k < 4; k++)
            if ((Py_ssize_t)strlen(SDK[k]) == nm.len && memcmp(SDK[k], p, nm.len) == 0) return 0;
        size += nm.len;
        int32_t value = member(it, metric, "value");
        if (value < 0 || (toks[value].type != T_INT && toks[value].type != T_FLOAT)) return 0;
        char text[64];
        Py_ssize_t n = toks[value].end - toks[value].start;
        if (n >= 63) return 0;
        memcpy(text, it->s + toks[value].start, n);
        text[n] = 0;
        if (toks[value].type == T_INT) {
            row->value = (double)strtoll(text, NULL, 10);
        } else {
            row->value = to_double(text);
        }
        static const char *STATS[] = {"min", "max", "stdDev"};
        for (int k = 0; k < 3; k++) {
            int32_t v = member_n(it, metric, STATS[k], (Py_ssize_t)strlen(STATS[k]));
            if (v >= 0 && toks[v].type != T_NULL) return 0;
        }
        int32_t count = member(it, metric, "count");
        row->count = 1;
        if (count >= 0 && toks[count].type != T_NULL) {
            if (toks[count].type != T_INT || it->s[toks[count].start] == '-') return 0;
            n = toks[count].end - toks[count].start;
            if (n > 10) return 0;
            memcpy(text, it->s + toks[count].start, n);
            text[n] = 0;
            long long c = strtoll(text, NULL, 10);
            if (c > INT32_MAX) return 0;
            row->count = c ? (int32_t)c : 1;
        }
    }
    if (size > ITEM_LIMIT) return 0; /* near the cap: cap.py's */
    return 1;
}

/* "%012llx" of v (below 16**12: a body's item index), written by hand: snprintf's format
   parsing cost more than the rest of push_row. */
static void put_hex12(char *out, uint64_t v) {
    static const char hex[] = "0123456789abcdef";
    for (int k = 11; k >= 0; k--, v >>= 4) out[k] = hex[v & 15];
}

static int push_row(Table *tb, Item *it, Row *row, int64_t index) {
    Py_ssize_t r = tb->n;
    /* itemId: the body's random head and the item's index, as item_ids.item_ids() shapes them */
    char id[96];
    Py_ssize_t head = it->id_head_len;
    if (head > 64) return -1;
    memcpy(id, it->id_head, head);
    put_hex12(id + head, (uint64_t)index);
    row->str[S_ITEM_ID].off = -1;
    row->str[S_ITEM_ID].len = head + 12;
    if (buf_put(&tb->index, &index, 8) < 0) return -1;
    if (r && !tb->mixed_ikeys) {
        StrCol *ikeys = &tb->str[S_IKEY];
        int32_t first;
        memcpy(&first, ikeys->offsets.p + 4, 4);
        Str ikey = row->str[S_IKEY];
        tb->mixed_ikeys = ikey.len != first || memcmp(ikeys->data.p, it->scratch.p + ikey.off, first) != 0;
    }
    for (int k = 0; k < NSTR; k++) {
        Str v = row->str[k];
        const char *p = it->scratch.p + v.off;
        if (k == S_DIMS) { p = it->scratch.p + row->dims_off; v.len = row->dims_len; }
        if (k == S_BUCKET && v.len >= 0) p = performance_bucket(row->duration);
        if (k == S_MEAS) v.len = -1;
        if (k == S_ITEM_ID) p = id;
        if (str_push(&tb->str[k], r, p, v.len) < 0) return -1;
    }
    if (buf_put(&tb->timestamp, &row->timestamp, 8) < 0) return -1;
    if (row->table == TB_TRACES || row->table == TB_EXCEPTIONS) {
        int32_t sev = row->severity < 0 ? 0 : row->severity;
        if (row->severity < 0) tb->sev_nulls++;
        if (buf_put(&tb->severity, &sev, 4) < 0 || bit_set(&tb->sev_bits, r, row->severity >= 0) < 0) return -1;
    }
    if (row->table == TB_REQUESTS || row->table == TB_DEPENDENCIES) {
        if (buf_put(&tb->duration, &row->duration, 8) < 0 || bit_set(&tb->success, r, row->success) < 0) return -1;
    }
    if (row->table == TB_METRICS) {
        if (buf_put(&tb->value, &row->value, 8) < 0 || buf_put(&tb->count, &row->count, 4) < 0) return -1;
    }
    tb->n++;
    return 0;
}

/* ---------- the result, as Python objects ---------- */

static PyObject *bytes_of(Buf *b) { return PyBytes_FromStringAndSize(b->p ? b->p : "", b->len); }

/* The iKey every row of the table shares (the first row's: its text starts the column's data).
   Routing a table then takes one look-up, not a dictionary encoding and a take of its rows. */
static PyObject *one_ikey_of(StrCol *ikeys) {
    int32_t len;
    memcpy(&len, ikeys->offsets.p + 4, 4);
    return PyUnicode_DecodeUTF8(ikeys->data.p ? ikeys->data.p : "", len, NULL);
}

/* (the rows' indexes in the body, the iKey they share or None, the table for export()). */
static PyObject *table_result(Table *tb, int which) {
    PyObject *one_ikey = tb->mixed_ikeys ? (Py_INCREF(Py_None), Py_None) : one_ikey_of(&tb->str[S_IKEY]);
    if (!one_ikey) return NULL;
    PyObject *index = bytes_of(&tb->index);
    PyObject *parsed = index ? parsed_capsule(tb, which) : NULL;
    if (!parsed) { Py_DECREF(one_ikey); Py_XDECREF(index); return NULL; }
    return Py_BuildValue("(NNN)", index, one_ikey, parsed);
}

/* ---------- the body ---------- */

typedef struct {
    Item it;
    Table tables[NTABLES];
    Buf rest;  /* int64 indexes of the items left to the Python path */
    Buf spans; /* int64 (start, end) of every item */
} Body;

/* Judges the item just parsed (its tokens in ps) and files it; 0 ok, -2 an error (parse_error). */
static int take_item(Body *body, Parser *ps, int64_t start) {
    int64_t span[2] = {start, ps->pos};
    int64_t index = body->spans.len / 16;
    if (buf_put(&body->spans, span, 16) < 0) return -2;
    body->it.toks = ps->toks;
    body->it.scratch.len = 0;
    Row row;
    int r = judge_item(&body->it, &row);
    if (r == -2) return -2;
    if (r == 1) return push_row(&body->tables[row.table], &body->it, &row, index) < 0 ? -2 : 0;
    return buf_put(&body->rest, &index, 8) < 0 ? -2 : 0;
}

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The items of a body, NDJSON lines or array elements as body.split_items counts them, each
   judged as it is parsed; -1 if the body is not one this parser reads exactly as split_items. */
static int read_body(const unsigned char *s, Py_ssize_t n, Parser *ps, Body *body) {
    Py_ssize_t a = 0, b = n;
    while (a < b && is_ws(s[a])) a++;
    while (b > a && is_ws(s[b - 1])) b--;
    if (a == b) return -1;
    if (s[a] == '[') {
        ps->pos = a + 1;
        ps->end = b;
        skip_ws(ps);
        if (ps->pos < b && s[ps->pos] == ']') return ps->pos + 1 == b ? 0 : -1;
        for (;;) {
            skip_ws(ps);
            int64_t start = ps->pos;
            ps->ntok = 0;
            ps->depth = 1;
            int r = parse_value(ps);
            if (r) return r;
            if (take_item(body, ps, start)) return -2;
            skip_ws(ps);
            if (ps->pos >= b) return -1;
            if (s[ps->pos] == ',') { ps->pos++; continue; }
            if (s[ps->pos] == ']' && ps->pos + 1 == b) return 0;
            return -1;
        }
    }
    /* NDJSON: each value parsed up to the body's end (no memchr of every line first), refused if
       it stepped over a newline: exactly the lines' parse, where a value cut at its line's end failed. */
    ps->pos = a;
    ps->end = b;
    while (ps->pos < b) {
        skip_ws(ps);
        int64_t start = ps->pos;
        ps->ntok = 0;
        ps->depth = 0;
        ps->newline = 0;
        int r = parse_value(ps);
        if (r) return r;
        if (ps->newline) return -1;
        Py_ssize_t after = ps->pos;
        while (ps->pos < b && (s[ps->pos] == ' ' || s[ps->pos] == '\t' || s[ps->pos] == '\r')) ps->pos++;
        if (ps->pos < b && s[ps->pos] != '\n') return -1;
        ps->pos = after;
        if (take_item(body, ps, start)) return -2;
    }
    return 0;
}

/* The indexes left to the Python path, as a list. */
static PyObject *rest_list(Buf *rest) {
    Py_ssize_t n = rest->len / 8;
    PyObject *list = PyList_New(n);
    for (Py_ssize_t k = 0; list && k < n; k++) {
        int64_t index;
        memcpy(&index, rest->p + 8 * k, 8);
        PyObject *number = PyLong_FromLongLong(index);
        if (!number) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, k, number);
    }
    return list;
}

static PyObject *parse_failure(void) {
    if (parse_error == E_OVERFLOW) PyErr_SetString(PyExc_OverflowError, "column too large");
    else PyErr_NoMemory();
    return NULL;
}

/* The whole parse runs without the GIL (other threads of the collector run meanwhile: its event
   loop, its writer, other bodies' parses); the Python objects are made after, with it. */
static PyObject *prepare(PyObject *self, PyObject *args) {
    Py_buffer view;
    const char *head_arg;
    Py_ssize_t head_len;
    if (!PyArg_ParseTuple(args, "y*s#", &view, &head_arg, &head_len)) return NULL;
    if (head_len > 64) { PyBuffer_Release(&view); PyErr_SetString(PyExc_ValueError, "item id head too long"); return NULL; }
    char head[65];
    memcpy(head, head_arg, head_len);
    const unsigned char *s = view.buf;
    Py_ssize_t n = view.len;
    PyObject *result = NULL;
    Parser ps = {s, 0, n, NULL, 0, 0, 0, 0};
    Body body;
    memset(&body, 0, sizeof(body));
    body.it.s = s;
    body.it.id_head = head;
    body.it.id_head_len = head_len;
    int r = -1;
    if (n <= INT32_MAX) {
        Py_BEGIN_ALLOW_THREADS
        parse_error = E_NONE;
        r = read_body(s, n, &ps, &body);
        Py_END_ALLOW_THREADS
    }
    if (r == -2) { parse_failure(); goto done; }
    if (r == -1) { result = Py_None; Py_INCREF(result); goto done; }
    PyObject *by_table = PyDict_New();
    if (!by_table) goto done;
    for (int k = 0; k < NTABLES; k++) {
        if (!body.tables[k].n) continue;
        PyObject *t = table_result(&body.tables[k], k);
        if (!t || PyDict_SetItemString(by_table, TABLE_NAMES[k], t) < 0) { Py_XDECREF(t); Py_DECREF(by_table); goto done; }
        Py_DECREF(t);
    }
    PyObject *rest = rest_list(&body.rest);
    if (!rest) { Py_DECREF(by_table); goto done; }
    result = Py_BuildValue("(NNN)", bytes_of(&body.spans), rest, by_table);
done:
    for (int k = 0; k < NTABLES; k++) table_free(&body.tables[k]);
    buf_free(&body.rest);
    buf_free(&body.spans);
    buf_free(&body.it.scratch);
    free(ps.toks);
    PyBuffer_Release(&view);
    return result;
}

/* For tests only: double_repr on any double, where a JSON number reaches it only with an exponent
   of at most two characters (tests/ingest/test_compiled_gil_free.py holds it to repr over all). */
static PyObject *repr_of_double(PyObject *self, PyObject *arg) {
    double v = PyFloat_AsDouble(arg);
    if (v == -1.0 && PyErr_Occurred()) return NULL;
    char text[64];
    int len = double_repr(v, text, sizeof(text));
    if (len < 0) Py_RETURN_NONE;
    return PyUnicode_FromStringAndSize(text, len);
}

/* For tests only: to_double on a number's text (tests/ingest/test_compiled_gil_free.py holds it
   to float() where its shortcuts apply and where they do not). */
static PyObject *double_of_text(PyObject *self, PyObject *arg) {
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!text) return NULL;
    return PyFloat_FromDouble(to_double(text));
}

static PyMethodDef METHODS[] = {
    {"prepare", prepare, METH_VARARGS,
     "prepare(body, item_id_head) -> (spans, rest, tables) or None: a decompressed track body's plain items, by table."},
    {"set_layout", set_layout, METH_VARARGS,
     "set_layout(table, fields): what fills each column of the table's schema: (kind, source, argument) per column."},
    {"export", export, METH_VARARGS,
     "export(table, service) -> (arrow_array capsule, its address): a table of prepare()'s as one struct ArrowArray."},
    {"float_repr", repr_of_double, METH_O, "float_repr(value) -> str or None: the compiled path's repr(value) (tests only)."},
    {"to_double", double_of_text, METH_O, "to_double(text) -> float: the compiled path's float(text) (tests only)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_cenvelope", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

static const char *table_name(int k) { return TABLE_NAMES[k]; }

/* module.<attribute> = a tuple of the n names name_of gives; -1 with an exception. */
static int add_names(PyObject *module, const char *attribute, int n, const char *(*name_of)(int)) {
    PyObject *names = PyTuple_New(n);
    for (int k = 0; names && k < n; k++) {
        PyObject *text = PyUnicode_FromString(name_of(k));
        if (!text) Py_CLEAR(names);
        else PyTuple_SET_ITEM(names, k, text);
    }
    if (!names || PyModule_AddObject(module, attribute, names) < 0) { Py_XDECREF(names); return -1; }
    return 0;
}

PyMODINIT_FUNC PyInit__cenvelope(void) {
    for (int k = 0; k < NTAGS; k++) TAG_LENGTHS[k] = (Py_ssize_t)strlen(TAGS[k]);
    for (int k = 0; k < NTABLES; k++) BASE_TYPE_LENGTHS[k] = (Py_ssize_t)strlen(BASE_TYPES[k]);
    if (!c_locale) c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c_locale) return PyErr_NoMemory();
    PyObject *module = PyModule_Create(&MODULE);
    if (!module) return NULL;
    if (add_names(module, "COLUMNS", NCOLUMNS, column_name) < 0 || add_names(module, "TABLES", NTABLES, table_name) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
