/* The compiled fast path of ingestion: a track body's plain envelopes straight to Arrow buffers.
 *
 * collector/ingest/compiled.py is its only caller and describes the contract; the pure-Python
 * path (columnar.py and envelope.py) is the reference, and tests/ingest/test_compiled_path.py
 * holds both to the same rows. This file only ever decides "take" (the item's column values are
 * exactly what the Python path stores) or "leave" (the item goes to the Python path, by its span
 * in the body); when in doubt, it leaves. It gives up on a whole body (returns None) wherever
 * orjson might read the body differently than this parser: invalid JSON or UTF-8, lone
 * surrogates, integers of more than 18 digits, numbers beyond a double, deep nesting.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---------- growable buffers ---------- */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *p = PyMem_Realloc(b->p, cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static int buf_byte(Buf *b, char c) { return buf_put(b, &c, 1); }

static void buf_free(Buf *b) { PyMem_Free(b->p); b->p = NULL; b->len = b->cap = 0; }

static int bit_set(Buf *bits, Py_ssize_t row, int value) {
    if (row % 8 == 0 && buf_byte(bits, 0) < 0) return -1;
    if (value) bits->p[row / 8] |= (char)(1 << (row % 8));
    return 0;
}

/* ---------- JSON tokens ---------- */

enum { T_OBJ, T_ARR, T_STR, T_INT, T_FLOAT, T_TRUE, T_FALSE, T_NULL };

typedef struct {
    uint8_t type;
    uint8_t escaped;   /* a string with backslash escapes */
    int32_t start, end; /* a string: inside the quotes; others: the token's text */
    int32_t next;       /* index of the token after this value's subtree */
    int32_t count;      /* children of an object (pairs) or array */
} Tok;

typedef struct {
    const unsigned char *s;
    Py_ssize_t pos, end;
    Tok *toks;
    int32_t ntok, captok;
    int depth;
} Parser;

#define MAX_DEPTH 200 /* deeper bodies go to the Python path whole */

static int new_tok(Parser *ps) {
    if (ps->ntok == ps->captok) {
        int32_t cap = ps->captok ? ps->captok * 2 : 256;
        Tok *t = PyMem_Realloc(ps->toks, sizeof(Tok) * cap);
        if (!t) { PyErr_NoMemory(); return -2; }
        ps->toks = t;
        ps->captok = cap;
    }
    return ps->ntok++;
}

static void skip_ws(Parser *ps) {
    while (ps->pos < ps->end) {
        unsigned char c = ps->s[ps->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') ps->pos++;
        else break;
    }
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(const unsigned char *s, Py_ssize_t pos, Py_ssize_t end) {
    if (pos + 4 > end) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[pos + i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Validates a string starting after its opening quote; returns the position of the closing quote,
   or -1 if invalid (bad UTF-8, control character, bad escape, lone surrogate). */
static Py_ssize_t scan_string(Parser *ps, int *escaped) {
    const unsigned char *s = ps->s;
    Py_ssize_t i = ps->pos, end = ps->end;
    *escaped = 0;
    while (i < end) {
        unsigned char c = s[i];
        if (c == '"') return i;
        if (c < 0x20) return -1;
        if (c == '\\') {
            *escaped = 1;
            if (i + 1 >= end) return -1;
            unsigned char e = s[i + 1];
            if (e == 'u') {
                int v = read_hex4(s, i + 2, end);
                if (v < 0) return -1;
                i += 6;
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (i + 1 >= end || s[i] != '\\' || s[i + 1] != 'u') return -1;
                    int w = read_hex4(s, i + 2, end);
                    if (w < 0xDC00 || w > 0xDFFF) return -1;
                    i += 6;
                } else if (v >= 0xDC00 && v <= 0xDFFF) {
                    return -1;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) return -1;
            i += 2;
            continue;
        }
        if (c < 0x80) { i++; continue; }
        /* UTF-8, strictly: no overlong forms, no surrogates, at most U+10FFFF */
        int n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
        else return -1;
        if (i + n >= end) return -1;
        for (int k = 1; k <= n; k++) {
            unsigned char d = s[i + k];
            if ((d & 0xC0) != 0x80) return -1;
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return -1;
        i += n + 1;
    }
    return -1;
}

/* Parses one value at ps->pos into tokens; 0 on success, -1 if the body is not what we read
   exactly as orjson does (the caller gives up on the body), -2 on a Python error. */
static int parse_value(Parser *ps) {
    skip_ws(ps);
    if (ps->pos >= ps->end) return -1;
    int idx = new_tok(ps);
    if (idx < 0) return -2;
    Tok *t = &ps->toks[idx];
    const unsigned char *s = ps->s;
    unsigned char c = s[ps->pos];
    t->escaped = 0;
    t->count = 0;
    if (c == '{' || c == '[') {
        int is_obj = c == '{';
        if (++ps->depth > MAX_DEPTH) return -1;
        ps->toks[idx].type = is_obj ? T_OBJ : T_ARR;
        ps->toks[idx].start = (int32_t)ps->pos;
        ps->pos++;
        skip_ws(ps);
        int32_t count = 0;
        if (ps->pos < ps->end && s[ps->pos] == (is_obj ? '}' : ']')) {
            ps->pos++;
        } else {
            for (;;) {
                if (is_obj) {
                    skip_ws(ps);
                    if (ps->pos >= ps->end || s[ps->pos] != '"') return -1;
                    int r = parse_value(ps);
                    if (r) return r;
                    skip_ws(ps);
                    if (ps->pos >= ps->end || s[ps->pos] != ':') return -1;
                    ps->pos++;
                }
                int r = parse_value(ps);
                if (r) return r;
                count++;
                skip_ws(ps);
                if (ps->pos >= ps->end) return -1;
                if (s[ps->pos] == ',') { ps->pos++; continue; }
                if (s[ps->pos] == (is_obj ? '}' : ']')) { ps->pos++; break; }
                return -1;
            }
        }
        ps->depth--;
        t = &ps->toks[idx];
        t->count = count;
        t->end = (int32_t)ps->pos;
        t->next = ps->ntok;
        return 0;
    }
    if (c == '"') {
        ps->pos++;
        int escaped;
        Py_ssize_t close = scan_string(ps, &escaped);
        if (close < 0) return -1;
        t->type = T_STR;
        t->escaped = (uint8_t)escaped;
        t->start = (int32_t)ps->pos;
        t->end = (int32_t)close;
        ps->pos = close + 1;
        t->next = ps->ntok;
        return 0;
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
        Py_ssize_t n = (Py_ssize_t)strlen(word);
        if (ps->pos + n > ps->end || memcmp(s + ps->pos, word, n)) return -1;
        t->type = c == 't' ? T_TRUE : c == 'f' ? T_FALSE : T_NULL;
        t->start = (int32_t)ps->pos;
        ps->pos += n;
        t->end = (int32_t)ps->pos;
        t->next = ps->ntok;
        return 0;
    }
    /* a number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
    Py_ssize_t i = ps->pos, start = i;
    int is_float = 0, digits = 0;
    if (s[i] == '-') i++;
    if (i < ps->end && s[i] == '0') { i++; digits = 1; }
    else if (i < ps->end && s[i] >= '1' && s[i] <= '9') { while (i < ps->end && s[i] >= '0' && s[i] <= '9') { i++; digits++; } }
    else return -1;
    if (i < ps->end && s[i] == '.') {
        is_float = 1;
        i++;
        if (i >= ps->end || s[i] < '0' || s[i] > '9') return -1;
        while (i < ps->end && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < ps->end && (s[i] == 'e' || s[i] == 'E')) {
        is_float = 1;
        i++;
        if (i < ps->end && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= ps->end || s[i] < '0' || s[i] > '9') return -1;
        while (i < ps->end && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (!is_float && digits > 18) return -1; /* orjson reads these as 64-bit ints or floats: let it */
    /* A number near or beyond a double's range is orjson's to judge (an error, or a float from an
       integer): only short tokens with small exponents stay here, which are finite doubles. */
    if (i - start > 40) return -1;
    if (is_float) {
        Py_ssize_t e = start;
        while (e < i && s[e] != 'e' && s[e] != 'E') e++;
        if (e < i && i - e > 3) return -1; /* an exponent of 3 digits or more */
    }
    t->type = is_float ? T_FLOAT : T_INT;
    t->start = (int32_t)start;
    t->end = (int32_t)i;
    ps->pos = i;
    t->next = ps->ntok;
    return 0;
}

/* ---------- reading tokens ---------- */

static void put_utf8(Buf *b, uint32_t cp, int *err) {
    char out[4];
    int n;
    if (cp < 0x80) { out[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    if (buf_put(b, out, n) < 0) *err = 1;
}

/* Decodes a (validated) string token's escapes into b (appending). */
static int decode_string(const unsigned char *s, const Tok *t, Buf *b) {
    if (!t->escaped) return buf_put(b, s + t->start, t->end - t->start);
    int err = 0;
    for (Py_ssize_t i = t->start; i < t->end && !err;) {
        unsigned char c = s[i];
        if (c != '\\') {
            Py_ssize_t j = i;
            while (j < t->end && s[j] != '\\') j++;
            if (buf_put(b, s + i, j - i) < 0) return -1;
            i = j;
            continue;
        }
        unsigned char e = s[i + 1];
        char out;
        switch (e) {
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            uint32_t cp = (uint32_t)read_hex4(s, i + 2, t->end);
            i += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = (uint32_t)read_hex4(s, i + 2, t->end);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            put_utf8(b, cp, &err);
            continue;
        }
        default: out = (char)e; break;
        }
        if (buf_byte(b, out) < 0) return -1;
        i += 2;
    }
    return err ? -1 : 0;
}

typedef struct {
    const unsigned char *s;
    Tok *toks;
    Buf scratch; /* decoded strings of one item, referenced by offset */
} Item;

typedef struct {
    Py_ssize_t off, len; /* in Item.scratch; len -1: null */
} Str;

static const Str NO_STR = {0, -1};

/* The token as a string in scratch; 1 if it is a string, 0 if null, -1 if another type, -2 error */
static int as_str(Item *it, int32_t ti, Str *out) {
    Tok *t = &it->toks[ti];
    if (t->type == T_NULL) { *out = NO_STR; return 0; }
    if (t->type != T_STR) return -1;
    out->off = it->scratch.len;
    if (decode_string(it->s, t, &it->scratch) < 0) return -2;
    out->len = it->scratch.len - out->off;
    return 1;
}

static int key_is_n(Item *it, int32_t ti, const char *key, Py_ssize_t n) {
    Tok *t = &it->toks[ti];
    if (!t->escaped) return t->end - t->start == n && memcmp(it->s + t->start, key, n) == 0;
    Buf tmp = {0};
    int same = decode_string(it->s, t, &tmp) == 0 && tmp.len == n && memcmp(tmp.p, key, n) == 0;
    buf_free(&tmp);
    return same;
}

#define key_is(it, ti, key) key_is_n(it, ti, key, (Py_ssize_t)strlen(key))

/* The value token of `key` in object `obj` (the last one, as a dict keeps it), or -1. */
static int32_t member_n(Item *it, int32_t obj, const char *key, Py_ssize_t len) {
    int32_t found = -1, k = obj + 1;
    for (int32_t n = 0; n < it->toks[obj].count; n++) {
        int32_t v = k + 1;
        if (key_is_n(it, k, key, len)) found = v;
        k = it->toks[v].next;
    }
    return found;
}

#define member(it, obj, key) member_n(it, obj, key, (Py_ssize_t)sizeof(key) - 1)

/* ---------- the canonical JSON text of a dynamic value, byte for byte orjson.dumps' ---------- */

static int emit_string(Item *it, const Tok *t, Buf *b) {
    static const char hex[] = "0123456789abcdef";
    Buf dec = {0};
    if (decode_string(it->s, t, &dec) < 0) return -1;
    int r = buf_byte(b, '"');
    for (Py_ssize_t i = 0; i < dec.len && r == 0; i++) {
        unsigned char c = (unsigned char)dec.p[i];
        switch (c) {
        case '"': r = buf_put(b, "\\\"", 2); break;
        case '\\': r = buf_put(b, "\\\\", 2); break;
        case '\b': r = buf_put(b, "\\b", 2); break;
        case '\f': r = buf_put(b, "\\f", 2); break;
        case '\n': r = buf_put(b, "\\n", 2); break;
        case '\r': r = buf_put(b, "\\r", 2); break;
        case '\t': r = buf_put(b, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                r = buf_put(b, u, 6);
            } else {
                r = buf_byte(b, (char)c);
            }
        }
    }
    if (r == 0) r = buf_byte(b, '"');
    buf_free(&dec);
    return r;
}

/* Python's repr of the float a token holds (shortest round trip, ".0" added), into out. */
static int float_repr(Item *it, const Tok *t, char *out, size_t size) {
    char tmp[64];
    Py_ssize_t n = t->end - t->start;
    memcpy(tmp, it->s + t->start, n);
    tmp[n] = 0;
    double v = PyOS_string_to_double(tmp, NULL, NULL);
    if (v == -1.0 && PyErr_Occurred()) return -2;
    char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!text) return -2;
    int fits = strlen(text) < size;
    if (fits) strcpy(out, text);
    PyMem_Free(text);
    return fits ? 0 : -1;
}

static int same_key(Item *it, int32_t a, int32_t b) {
    Tok *x = &it->toks[a], *y = &it->toks[b];
    if (!x->escaped && !y->escaped)
        return x->end - x->start == y->end - y->start && memcmp(it->s + x->start, it->s + y->start, x->end - x->start) == 0;
    Buf p = {0}, q = {0};
    int same = decode_string(it->s, x, &p) == 0 && decode_string(it->s, y, &q) == 0 && p.len == q.len &&
               memcmp(p.p, q.p, p.len) == 0;
    buf_free(&p);
    buf_free(&q);
    return same;
}

#define MAX_KEYS 64
#define MAX_NESTING 90 /* stored_form.MAX_NESTING is 100: anything near it is the Python path's */

/* Appends the value's JSON text as orjson.dumps writes it; 0 ok, -1 leave the item, -2 error.
   `stringify`: the value is a property's, stored as App Insights does (scalars as strings). */
static int emit_value(Item *it, int32_t ti, Buf *b, int depth, int stringify) {
    Tok *t = &it->toks[ti];
    char text[64];
    switch (t->type) {
    case T_STR: return emit_string(it, t, b) < 0 ? -2 : 0;
    case T_NULL: return buf_put(b, "null", 4) < 0 ? -2 : 0;
    case T_TRUE: return buf_put(b, stringify ? "\"True\"" : "true", stringify ? 6 : 4) < 0 ? -2 : 0;
    case T_FALSE: return buf_put(b, stringify ? "\"False\"" : "false", stringify ? 7 : 5) < 0 ? -2 : 0;
    case T_INT: {
        Py_ssize_t n = t->end - t->start;
        const unsigned char *p = it->s + t->start;
        if (n == 2 && p[0] == '-' && p[1] == '0') { p = (const unsigned char *)"0"; n = 1; }
        if (stringify && buf_byte(b, '"') < 0) return -2;
        if (buf_put(b, p, n) < 0) return -2;
        if (stringify && buf_byte(b, '"') < 0) return -2;
        return 0;
    }
    case T_FLOAT: {
        int r = float_repr(it, t, text, sizeof(text));
        if (r) return r;
        if (!stringify && strstr(text, "e-")) return -1; /* orjson writes these its own way */
        if (stringify && buf_byte(b, '"') < 0) return -2;
        if (buf_put(b, text, (Py_ssize_t)strlen(text)) < 0) return -2;
        if (stringify && buf_byte(b, '"') < 0) return -2;
        return 0;
    }
    default: break;
    }
    if (depth >= MAX_NESTING) return -1;
    int is_obj = t->type == T_OBJ;
    int32_t count = t->count;
    if (is_obj && count > MAX_KEYS) return -1;
    if (buf_byte(b, is_obj ? '{' : '[') < 0) return -2;
    int32_t keys[MAX_KEYS];
    int32_t k = ti + 1;
    for (int32_t n = 0; n < count; n++) {
        if (n && buf_byte(b, ',') < 0) return -2;
        if (is_obj) {
            for (int32_t j = 0; j < n; j++)
                if (same_key(it, keys[j], k)) return -1; /* a repeated key: the dict's order is Python's to tell */
            keys[n] = k;
            if (emit_string(it, &it->toks[k], b) < 0 || buf_byte(b, ':') < 0) return -2;
            k++;
        }
        int r = emit_value(it, k, b, depth + 1, 0);
        if (r) return r;
        k = it->toks[k].next;
    }
    return buf_byte(b, is_obj ? '}' : ']') < 0 ? -2 : 0;
}

/* customDimensions of baseData.properties: values.custom_dimensions then dumps_dynamic. */
static int emit_dimensions(Item *it, int32_t props, Buf *b) {
    if (props < 0 || it->toks[props].type == T_NULL) return buf_put(b, "{}", 2) < 0 ? -2 : 0;
    if (it->toks[props].type != T_OBJ) return -1;
    if (member(it, props, "custom_dimensions") >= 0) return -1; /* azmlinfsrv's: quirks.py unpacks it */
    Tok *t = &it->toks[props];
    if (t->count > MAX_KEYS) return -1;
    int32_t keys[MAX_KEYS];
    if (buf_byte(b, '{') < 0) return -2;
    int32_t k = props + 1;
    for (int32_t n = 0; n < t->count; n++) {
        if (n && buf_byte(b, ',') < 0) return -2;
        for (int32_t j = 0; j < n; j++)
            if (same_key(it, keys[j], k)) return -1;
        keys[n] = k;
        if (emit_string(it, &it->toks[k], b) < 0 || buf_byte(b, ':') < 0) return -2;
        int r = emit_value(it, k + 1, b, 1, 1);
        if (r) return r;
        k = it->toks[k + 1].next;
    }
    return buf_byte(b, '}') < 0 ? -2 : 0;
}

/* ---------- values that need judgement, as values.py judges them ---------- */

static int digits_at(const char *p, Py_ssize_t n, Py_ssize_t *i, int min, int max, int64_t *out) {
    int count = 0;
    int64_t v = 0;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9' && count < max) { v = v * 10 + (p[*i] - '0'); (*i)++; count++; }
    *out = v;
    return count >= min;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* parse_time for 'YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z]': microseconds since the epoch; 0 if another form. */
static int parse_time(const char *p, Py_ssize_t n, int64_t *micros) {
    Py_ssize_t i = 0;
    int64_t y, mo, d, h, mi, se, frac = 0;
    if (!digits_at(p, n, &i, 4, 4, &y) || i >= n || p[i++] != '-') return 0;
    if (!digits_at(p, n, &i, 2, 2, &mo) || i >= n || p[i++] != '-') return 0;
    if (!digits_at(p, n, &i, 2, 2, &d) || i >= n || p[i++] != 'T') return 0;
    if (!digits_at(p, n, &i, 2, 2, &h) || i >= n || p[i++] != ':') return 0;
    if (!digits_at(p, n, &i, 2, 2, &mi) || i >= n || p[i++] != ':') return 0;
    if (!digits_at(p, n, &i, 2, 2, &se)) return 0;
    if (i < n && p[i] == '.') {
        i++;
        Py_ssize_t from = i;
        if (!digits_at(p, n, &i, 1, 6, &frac)) return 0;
        for (Py_ssize_t k = i - from; k < 6; k++) frac *= 10;
    }
    if (i < n && p[i] == 'Z') i++;
    if (i != n) return 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap)) return 0;
    *micros = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000000) + frac;
    return 1;
}

/* parse_duration for 'd.hh:mm:ss.fffffff' (ASCII digits only); 0 if another form. */
static int parse_duration(const char *p, Py_ssize_t n, double *ms) {
    Py_ssize_t i = 0;
    int64_t days = 0, h, m, s;
    Py_ssize_t j = 0;
    while (j < n && p[j] >= '0' && p[j] <= '9') j++;
    if (j < n && p[j] == '.' && j > 0) {
        if (j > 9) return 0;
        digits_at(p, n, &i, 1, 9, &days);
        i++;
    }
    if (!digits_at(p, n, &i, 1, 2, &h) || i >= n || p[i++] != ':') return 0;
    Py_ssize_t at = i;
    if (!digits_at(p, n, &i, 2, 2, &m) || i - at != 2 || i >= n || p[i++] != ':') return 0;
    at = i;
    if (!digits_at(p, n, &i, 2, 2, &s) || i - at != 2) return 0;
    double frac = 0.0;
    if (i < n && p[i] == '.') {
        i++;
        char tmp[16] = "0.";
        Py_ssize_t from = i;
        while (i < n && p[i] >= '0' && p[i] <= '9' && i - from < 8) i++;
        if (i - from < 1 || i - from > 7) return 0;
        memcpy(tmp + 2, p + from, i - from);
        tmp[2 + i - from] = 0;
        frac = PyOS_string_to_double(tmp, NULL, NULL);
    }
    if (i != n) return 0;
    int64_t total = days * 86400 + h * 3600 + m * 60 + s;
    *ms = ((double)total + frac) * 1000.0;
    return 1;
}

static const char *performance_bucket(double ms) {
    static const double limits[] = {250, 500, 1000, 3000, 7000, 15000, 30000, 60000, 120000, 300000};
    static const char *names[] = {"<250ms", "250ms-500ms", "500ms-1sec", "1sec-3sec", "3sec-7sec", "7sec-15sec",
                                  "15sec-30sec", "30sec-1min", "1min-2min", "2min-5min"};
    for (int k = 0; k < 10; k++)
        if (ms < limits[k]) return names[k];
    return ">=5min";
}

/* ---------- tables and their columns ---------- */

enum {
    TB_TRACES, TB_REQUESTS, TB_DEPENDENCIES, TB_EVENTS, TB_METRICS, TB_EXCEPTIONS, NTABLES
};
static const char *TABLE_NAMES[NTABLES] = {"traces", "requests", "dependencies", "customEvents", "customMetrics", "exceptions"};
static const char *BASE_TYPES[NTABLES] = {"MessageData", "RequestData", "RemoteDependencyData", "EventData", "MetricData",
                                          "ExceptionData"};

#define NTAGS 19
static const char *TAGS[NTAGS] = {
    "ai.operation.id", "ai.operation.name", "ai.operation.parentId", "ai.operation.syntheticSource", "ai.session.id",
    "ai.user.id", "ai.user.authUserId", "ai.user.accountId", "ai.application.ver", "ai.device.type",
    "ai.device.model", "ai.device.osVersion", "ai.location.ip", "ai.location.city", "ai.location.province",
    "ai.location.country", "ai.cloud.role", "ai.cloud.roleInstance", "ai.internal.sdkVersion",
};
static Py_ssize_t TAG_LENGTHS[NTAGS];
static const char *TAG_COLUMN_NAMES[NTAGS] = {
    "operation_Id", "operation_Name", "operation_ParentId", "operation_SyntheticSource", "session_Id",
    "user_Id", "user_AuthenticatedId", "user_AccountId", "application_Version", "client_Type",
    "client_Model", "client_OS", "client_IP", "client_City", "client_StateOrProvince",
    "client_CountryOrRegion", "cloud_RoleName", "cloud_RoleInstance", "sdkVersion",
};
#define TAG_LIMIT 1024
#define ITEM_LIMIT 65536

enum {
    S_IKEY = NTAGS, S_DIMS, S_MEAS, S_MESSAGE, S_ID, S_NAME, S_URL, S_SOURCE, S_DATA, S_TARGET, S_TYPE, S_CODE, S_BUCKET,
    S_PROBLEM, S_HANDLED, S_ASSEMBLY, S_METHOD, S_OUTER_TYPE, S_OUTER_MESSAGE, S_OUTER_ASSEMBLY, S_OUTER_METHOD,
    S_INNER_TYPE, S_INNER_MESSAGE, S_INNER_ASSEMBLY, S_INNER_METHOD, S_DETAILS, S_ITEM_ID, NSTR
};
static const char *STR_NAMES[NSTR - NTAGS] = {"iKey", "customDimensions", "customMeasurements", "message", "id", "name", "url",
                                              "source", "data", "target", "type", "resultCode", "performanceBucket",
                                              "problemId", "handledAt", "assembly", "method", "outerType", "outerMessage",
                                              "outerAssembly", "outerMethod", "innermostType", "innermostMessage",
                                              "innermostAssembly", "innermostMethod", "details", "itemId"};

typedef struct {
    Buf data, offsets, bits;
    Py_ssize_t nulls;
} StrCol;

typedef struct {
    Py_ssize_t n;
    Buf index;
    StrCol str[NSTR];
    Buf timestamp;          /* int64 */
    Buf severity, sev_bits; /* int32 + validity */
    Py_ssize_t sev_nulls;
    Buf duration, success;  /* float64, bit-packed bool */
    Buf value, count;       /* float64, int32 */
} Table;

static int str_push(StrCol *c, Py_ssize_t row, const char *p, Py_ssize_t len) {
    if (row == 0) {
        int32_t zero = 0;
        if (buf_put(&c->offsets, &zero, 4) < 0) return -1;
    }
    if (len < 0) {
        c->nulls++;
        if (bit_set(&c->bits, row, 0) < 0) return -1;
    } else {
        if (buf_put(&c->data, p, len) < 0 || bit_set(&c->bits, row, 1) < 0) return -1;
    }
    if (c->data.len > INT32_MAX) { PyErr_SetString(PyExc_OverflowError, "column too large"); return -1; }
    int32_t end = (int32_t)c->data.len;
    return buf_put(&c->offsets, &end, 4);
}

/* ---------- one item ---------- */

typedef struct {
    int table;
    Str str[NSTR];
    int64_t timestamp;
    int severity; /* -1: null */
    double duration, value;
    int success;
    int32_t count;
    Py_ssize_t dims_off, dims_len; /* in Item.scratch too */
} Row;

#define MAX_FRAMES 256

/* A string member as as_string reads it (a string, or null when absent or null); 0 for another type. */
static int str_member(Item *it, int32_t obj, const char *key, Str *out) {
    int32_t v = member_n(it, obj, key, (Py_ssize_t)strlen(key));
    *out = NO_STR;
    if (v < 0) return 1;
    int r = as_str(it, v, out);
    return r < 0 ? r : 1;
}

static int emit_str(Item *it, Str v, Buf *b) {
    if (v.len < 0) return buf_put(b, "null", 4);
    Tok t = {T_STR, 0, 0, 0, 0, 0};
    Item view = {(const unsigned char *)it->scratch.p + v.off, NULL, {0}};
    t.end = (int32_t)v.len; /* decoded text, without escapes: emit_string escapes it as orjson does */
    return emit_string(&view, &t, b);
}

/* The first frame's method and assembly, and the entry's JSON (`_exception_details`' entry with
   `_frames`' frames, sorted by level as Python's stable sort does) appended to out. */
static int exception_entry(Item *it, int32_t e, int index, Buf *out, Str *type, Str *message, Str *method, Str *assembly) {
    Tok *toks = it->toks;
    int r = 0;
    if (toks[e].type != T_OBJ) return 0;
    int32_t type_tok = member(it, e, "typeName");
    if (type_tok < 0 || (r = as_str(it, type_tok, type)) != 1) return r == -2 ? -2 : 0;
    if ((r = str_member(it, e, "message", message)) != 1) return r == -2 ? -2 : 0;
    if (message->len < 0) { message->off = it->scratch.len; message->len = 0; }
    int32_t parsed = member(it, e, "parsedStack"), stack = member(it, e, "stack");
    *method = NO_STR;
    *assembly = NO_STR;
    int has_frames = parsed >= 0 && toks[parsed].type == T_ARR;
    if (!has_frames && ((parsed >= 0 && toks[parsed].type != T_NULL) || (stack >= 0 && toks[stack].type != T_NULL)))
        return 0; /* a stack string (unfolded by stack.py), or an error: the Python path's */
    Buf *b = out;
    char number[32];
    if (buf_put(b, "{\"id\":", 6) < 0) return -2;
    int32_t id = member(it, e, "id");
    if (id < 0) { snprintf(number, sizeof(number), "%d", index + 1); if (buf_put(b, number, (Py_ssize_t)strlen(number)) < 0) return -2; }
    else if ((r = emit_value(it, id, b, 3, 0)) != 0) return r;
    if (buf_put(b, ",\"outerId\":", 11) < 0) return -2;
    int32_t outer = member(it, e, "outerId");
    if (outer < 0) { if (buf_byte(b, '0') < 0) return -2; }
    else if ((r = emit_value(it, outer, b, 3, 0)) != 0) return r;
    if (buf_put(b, ",\"type\":", 8) < 0 || emit_string(it, &toks[type_tok], b) < 0) return -2;
    if (buf_put(b, ",\"message\":", 11) < 0 || emit_str(it, *message, b) < 0) return -2;
    if (has_frames) {
        int32_t count = toks[parsed].count;
        if (count > MAX_FRAMES) return 0;
        int32_t frames[MAX_FRAMES];
        int64_t levels[MAX_FRAMES];
        int32_t f = parsed + 1;
        for (int32_t n = 0; n < count; n++) {
            if (toks[f].type != T_OBJ) return 0; /* strings (stack.py reads them) or an error */
            int32_t level = member(it, f, "level");
            int64_t key = level < 0 ? n : 0;
            if (level >= 0 && toks[level].type == T_INT) key = strtoll((const char *)it->s + toks[level].start, NULL, 10);
            else if (level >= 0 && toks[level].type == T_TRUE) key = 1;
            int32_t at = n; /* a stable insertion sort by level */
            while (at > 0 && levels[at - 1] > key) { frames[at] = frames[at - 1]; levels[at] = levels[at - 1]; at--; }
            frames[at] = f;
            levels[at] = key;
            f = toks[f].next;
        }
        if (buf_put(b, ",\"parsedStack\":[", 16) < 0) return -2;
        for (int32_t n = 0; n < count; n++) {
            int32_t frame = frames[n];
            Str m, a, file;
            if ((r = str_member(it, frame, "method", &m)) != 1 || (r = str_member(it, frame, "assembly", &a)) != 1 ||
                (r = str_member(it, frame, "fileName", &file)) != 1)
                return r == -2 ? -2 : 0;
            if (n == 0) { *method = m; *assembly = a; }
            if ((n && buf_byte(b, ',') < 0) || buf_put(b, "{\"level\":", 9) < 0) return -2;
            int32_t level = member(it, frame, "level");
            if (level < 0) {
                snprintf(number, sizeof(number), "%lld", (long long)levels[n]);
                if (buf_put(b, number, (Py_ssize_t)strlen(number)) < 0) return -2;
            } else if ((r = emit_value(it, level, b, 5, 0)) != 0) {
                return r;
            }
            if (buf_put(b, ",\"method\":", 10) < 0 || emit_str(it, m, b) < 0) return -2;
            if (buf_put(b, ",\"assembly\":", 12) < 0 || emit_str(it, a, b) < 0) return -2;
            if (buf_put(b, ",\"fileName\":", 12) < 0 || emit_str(it, file, b) < 0) return -2;
            if (buf_put(b, ",\"line\":", 8) < 0) return -2;
            int32_t line = member(it, frame, "line");
            if (line < 0) { if (buf_put(b, "null", 4) < 0) return -2; }
            else if ((r = emit_value(it, line, b, 5, 0)) != 0) return r;
            if (buf_byte(b, '}') < 0) return -2;
        }
        if (buf_byte(b, ']') < 0) return -2;
    }
    return buf_byte(b, '}') < 0 ? -2 : 1;
}

/* The columns envelope._exception fills, for a chain of exceptions with parsed stacks of frames
   (or none); 1 filled, 0 leave, -2 error. */
static int judge_exception(Item *it, int32_t base, Row *row, Py_ssize_t *size) {
    int32_t list = member(it, base, "exceptions");
    int r;
    if (list < 0 || it->toks[list].type != T_ARR || it->toks[list].count == 0) return 0;
    if ((r = str_member(it, base, "handledAt", &row->str[S_HANDLED])) != 1) return r == -2 ? -2 : 0;
    Str problem;
    if ((r = str_member(it, base, "problemId", &problem)) != 1) return r == -2 ? -2 : 0;
    Buf details = {0};
    if (buf_byte(&details, '[') < 0) return -2;
    int32_t e = list + 1;
    for (int32_t n = 0; n < it->toks[list].count; n++) {
        Str type, message, method, assembly;
        if (n && buf_byte(&details, ',') < 0) { buf_free(&details); return -2; }
        r = exception_entry(it, e, n, &details, &type, &message, &method, &assembly);
        if (r != 1) { buf_free(&details); return r; }
        if (n == 0) {
            row->str[S_TYPE] = row->str[S_OUTER_TYPE] = type;
            row->str[S_MESSAGE] = row->str[S_OUTER_MESSAGE] = message;
            row->str[S_METHOD] = row->str[S_OUTER_METHOD] = method;
            row->str[S_ASSEMBLY] = row->str[S_OUTER_ASSEMBLY] = assembly;
        }
        row->str[S_INNER_TYPE] = type;
        row->str[S_INNER_MESSAGE] = message;
        row->str[S_INNER_METHOD] = method;
        row->str[S_INNER_ASSEMBLY] = assembly;
        e = it->toks[e].next;
    }
    if (buf_byte(&details, ']') < 0) { buf_free(&details); return -2; }
    row->str[S_DETAILS].off = it->scratch.len;
    row->str[S_DETAILS].len = details.len;
    r = buf_put(&it->scratch, details.p, details.len);
    buf_free(&details);
    if (r < 0) return -2;
    if (problem.len > 0) {
        row->str[S_PROBLEM] = problem;
    } else if (row->str[S_METHOD].len <= 0) {
        row->str[S_PROBLEM] = row->str[S_TYPE];
    } else { /* "<type> at <method>", composed aside: scratch may move while it grows */
        Str type = row->str[S_TYPE], method = row->str[S_METHOD];
        Buf text = {0};
        if (buf_put(&text, it->scratch.p + type.off, type.len) < 0 || buf_put(&text, " at ", 4) < 0 ||
            buf_put(&text, it->scratch.p + method.off, method.len) < 0) { buf_free(&text); return -2; }
        row->str[S_PROBLEM].off = it->scratch.len;
        row->str[S_PROBLEM].len = text.len;
        r = buf_put(&it->scratch, text.p, text.len);
        buf_free(&text);
        if (r < 0) return -2;
    }
    *size += row->str[S_MESSAGE].len * 2 + row->str[S_INNER_MESSAGE].len + row->str[S_TYPE].len + row->str[S_PROBLEM].len +
             row->str[S_DETAILS].len;
    return 1;
}

/* 1: the row is filled; 0: leave the item to the Python path; -2: a Python error. */
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
        double v = PyOS_string_to_double(text, NULL, NULL);
        if (v == -1.0 && PyErr_Occurred()) return -2;
        if (v != 100.0) return 0;
    }
    int32_t base_type = member(it, data, "baseType");
    if (base_type < 0 || toks[base_type].type != T_STR) return 0;
    row->table = -1;
    for (int k = 0; k < NTABLES; k++)
        if (key_is(it, base_type, BASE_TYPES[k])) row->table = k;
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
            for (int tag = 0; tag < NTAGS; tag++) {
                if (!key_is_n(it, k, TAGS[tag], TAG_LENGTHS[tag])) continue;
                Str value;
                if ((r = as_str(it, k + 1, &value)) < 0) return r == -2 ? -2 : 0;
                if (r == 1) {
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
    static const struct { int table; int col; const char *field; int sized; } FIELDS[] = {
        {TB_TRACES, S_MESSAGE, "message", 1},
        {TB_REQUESTS, S_ID, "id", 0}, {TB_REQUESTS, S_NAME, "name", 1}, {TB_REQUESTS, S_URL, "url", 1},
        {TB_REQUESTS, S_SOURCE, "source", 0},
        {TB_DEPENDENCIES, S_ID, "id", 0}, {TB_DEPENDENCIES, S_NAME, "name", 1}, {TB_DEPENDENCIES, S_DATA, "data", 1},
        {TB_DEPENDENCIES, S_TARGET, "target", 0}, {TB_DEPENDENCIES, S_CODE, "resultCode", 0},
        {TB_DEPENDENCIES, S_TYPE, "type", 1},
        {TB_EVENTS, S_NAME, "name", 1},
    };
    for (size_t f = 0; f < sizeof(FIELDS) / sizeof(FIELDS[0]); f++) {
        if (FIELDS[f].table != table) continue;
        int32_t v = member_n(it, base, FIELDS[f].field, (Py_ssize_t)strlen(FIELDS[f].field));
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
            row->value = PyOS_string_to_double(text, NULL, NULL);
            if (row->value == -1.0 && PyErr_Occurred()) return -2;
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

static const char *id_head;
static Py_ssize_t id_head_len;

static int push_row(Table *tb, Item *it, Row *row, int64_t index) {
    Py_ssize_t r = tb->n;
    /* itemId: the body's random head and the item's index, as item_ids.item_ids() shapes them */
    char id[96];
    if (id_head_len > 64) return -1;
    memcpy(id, id_head, id_head_len);
    snprintf(id + id_head_len, sizeof(id) - id_head_len, "%012llx", (unsigned long long)index);
    row->str[S_ITEM_ID].off = -1;
    row->str[S_ITEM_ID].len = id_head_len + 12;
    if (buf_put(&tb->index, &index, 8) < 0) return -1;
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

static PyObject *str_column(StrCol *c, Py_ssize_t n) {
    if (c->nulls == n) Py_RETURN_NONE;
    PyObject *bits = c->nulls ? bytes_of(&c->bits) : (Py_INCREF(Py_None), Py_None);
    PyObject *out = Py_BuildValue("(NNNn)", bits, bytes_of(&c->offsets), bytes_of(&c->data), c->nulls);
    return out;
}

static PyObject *table_result(Table *tb, int which) {
    PyObject *cols = PyDict_New();
    if (!cols) return NULL;
    for (int k = 0; k < NSTR; k++) {
        PyObject *col = str_column(&tb->str[k], tb->n);
        const char *name = k < NTAGS ? TAG_COLUMN_NAMES[k] : STR_NAMES[k - NTAGS];
        if (!col || PyDict_SetItemString(cols, name, col) < 0) { Py_XDECREF(col); Py_DECREF(cols); return NULL; }
        Py_DECREF(col);
    }
    PyObject *extra = NULL;
    if (which == TB_TRACES || which == TB_EXCEPTIONS) {
        PyObject *bits = tb->sev_nulls ? bytes_of(&tb->sev_bits) : (Py_INCREF(Py_None), Py_None);
        extra = Py_BuildValue("{s:(NNn)}", "severityLevel", bits, bytes_of(&tb->severity), tb->sev_nulls);
    } else if (which == TB_REQUESTS || which == TB_DEPENDENCIES) {
        extra = Py_BuildValue("{s:N,s:N}", "duration", bytes_of(&tb->duration), "success", bytes_of(&tb->success));
    } else if (which == TB_METRICS) {
        extra = Py_BuildValue("{s:N,s:N}", "value", bytes_of(&tb->value), "valueCount", bytes_of(&tb->count));
    } else {
        extra = PyDict_New();
    }
    if (!extra || PyDict_Update(cols, extra) < 0) { Py_XDECREF(extra); Py_DECREF(cols); return NULL; }
    Py_DECREF(extra);
    return Py_BuildValue("(nNNN)", tb->n, bytes_of(&tb->index), bytes_of(&tb->timestamp), cols);
}

static void table_free(Table *tb) {
    buf_free(&tb->index);
    for (int k = 0; k < NSTR; k++) { buf_free(&tb->str[k].data); buf_free(&tb->str[k].offsets); buf_free(&tb->str[k].bits); }
    buf_free(&tb->timestamp);
    buf_free(&tb->severity);
    buf_free(&tb->sev_bits);
    buf_free(&tb->duration);
    buf_free(&tb->success);
    buf_free(&tb->value);
    buf_free(&tb->count);
}

/* ---------- the body ---------- */

typedef struct {
    Item it;
    Table tables[NTABLES];
    PyObject *rest; /* indexes of the items left to the Python path */
    Buf spans;      /* int64 (start, end) of every item */
} Body;

/* Judges the item just parsed (its tokens in ps) and files it; 0 ok, -2 a Python error. */
static int take_item(Body *body, Parser *ps, int64_t start) {
    int64_t span[2] = {start, ps->pos};
    Py_ssize_t index = body->spans.len / 16;
    if (buf_put(&body->spans, span, 16) < 0) return -2;
    body->it.toks = ps->toks;
    body->it.scratch.len = 0;
    Row row;
    int r = judge_item(&body->it, &row);
    if (r == -2) return -2;
    if (r == 1) return push_row(&body->tables[row.table], &body->it, &row, index) < 0 ? -2 : 0;
    PyObject *number = PyLong_FromSsize_t(index);
    if (!number || PyList_Append(body->rest, number) < 0) { Py_XDECREF(number); return -2; }
    Py_DECREF(number);
    return 0;
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
    Py_ssize_t line = a;
    while (line < b) {
        Py_ssize_t stop = line;
        const unsigned char *nl = memchr(s + line, '\n', b - line);
        stop = nl ? nl - s : b;
        ps->pos = line;
        ps->end = stop;
        skip_ws(ps);
        if (ps->pos < stop) {
            int64_t start = ps->pos;
            ps->ntok = 0;
            ps->depth = 0;
            int r = parse_value(ps);
            if (r) return r;
            Py_ssize_t after = ps->pos;
            skip_ws(ps);
            if (ps->pos != stop) return -1;
            ps->pos = after;
            if (take_item(body, ps, start)) return -2;
        }
        line = stop + 1;
    }
    return 0;
}

static PyObject *prepare(PyObject *self, PyObject *args) {
    Py_buffer view;
    const char *head;
    Py_ssize_t head_len;
    if (!PyArg_ParseTuple(args, "y*s#", &view, &head, &head_len)) return NULL;
    if (head_len > 64) { PyBuffer_Release(&view); PyErr_SetString(PyExc_ValueError, "item id head too long"); return NULL; }
    id_head = head;
    id_head_len = head_len;
    const unsigned char *s = view.buf;
    Py_ssize_t n = view.len;
    PyObject *result = NULL;
    Parser ps = {s, 0, n, NULL, 0, 0, 0};
    Body body;
    memset(&body, 0, sizeof(body));
    body.it.s = s;
    body.rest = PyList_New(0);
    if (!body.rest) goto done;
    if (n > INT32_MAX) { result = Py_None; Py_INCREF(result); goto done; }
    int r = read_body(s, n, &ps, &body);
    if (r == -2) goto done;
    if (r == -1) { result = Py_None; Py_INCREF(result); goto done; }
    PyObject *by_table = PyDict_New();
    if (!by_table) goto done;
    for (int k = 0; k < NTABLES; k++) {
        if (!body.tables[k].n) continue;
        PyObject *t = table_result(&body.tables[k], k);
        if (!t || PyDict_SetItemString(by_table, TABLE_NAMES[k], t) < 0) { Py_XDECREF(t); Py_DECREF(by_table); goto done; }
        Py_DECREF(t);
    }
    result = Py_BuildValue("(NON)", bytes_of(&body.spans), body.rest, by_table);
done:
    Py_XDECREF(body.rest);
    for (int k = 0; k < NTABLES; k++) table_free(&body.tables[k]);
    buf_free(&body.spans);
    buf_free(&body.it.scratch);
    PyMem_Free(ps.toks);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef METHODS[] = {
    {"prepare", prepare, METH_VARARGS,
     "prepare(body, item_id_head) -> (spans, rest, tables) or None: a decompressed track body's plain items as Arrow buffers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_cenvelope", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cenvelope(void) {
    for (int k = 0; k < NTAGS; k++) TAG_LENGTHS[k] = (Py_ssize_t)strlen(TAGS[k]);
    return PyModule_Create(&MODULE);
}
