/* Part of the compiled fast path: buffers, a strict JSON tokenizer, and JSON text written as orjson.dumps writes it.
 * Included once, by _cenvelope.c (one translation unit: every function stays static). */
#ifndef _CENVELOPE_JSON_H
#define _CENVELOPE_JSON_H

#include <stdlib.h>

/* ---------- the parse runs without the GIL: no Python API until its end ---------- */

/* What failed, set where it failed (malloc's allocator, not Python's: no GIL needed) and raised by
   prepare() once it holds the GIL again. Per thread: several bodies are parsed at once. */
enum { E_NONE, E_NOMEM, E_OVERFLOW };
static _Thread_local int parse_error;

/* ---------- growable buffers ---------- */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { parse_error = E_NOMEM; return -1; }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (b->len + n > b->cap && buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static int buf_byte(Buf *b, char c) { return buf_put(b, &c, 1); }

/* "%lld" of v, by hand: snprintf's format parsing is most of its cost. */
static int buf_int(Buf *b, int64_t v) {
    char text[24];
    int n = sizeof(text);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do { text[--n] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) text[--n] = '-';
    return buf_put(b, text + n, (Py_ssize_t)sizeof(text) - n);
}

static void buf_free(Buf *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

static int bit_set(Buf *bits, Py_ssize_t row, int value) {
    if (row % 8 == 0 && buf_byte(bits, 0) < 0) return -1;
    if (value) bits->p[row / 8] |= (char)(1 << (row % 8));
    return 0;
}

/* memcmp(a, b, n) == 0 inlined, a word at a time: the keys compared are short, and a call to
   memcmp cost more than the comparing. */
static inline int same_bytes(const void *a, const void *b, Py_ssize_t n) {
    const unsigned char *p = a, *q = b;
    for (; n >= 8; p += 8, q += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        memcpy(&y, q, 8);
        if (x != y) return 0;
    }
    for (; n > 0; p++, q++, n--)
        if (*p != *q) return 0;
    return 1;
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
    int newline; /* skip_ws stepped over a newline (an NDJSON item must not span lines) */
} Parser;

#define MAX_DEPTH 200 /* deeper bodies go to the Python path whole */

static int new_tok(Parser *ps) {
    if (ps->ntok == ps->captok) {
        int32_t cap = ps->captok ? ps->captok * 2 : 256;
        Tok *t = realloc(ps->toks, sizeof(Tok) * cap);
        if (!t) { parse_error = E_NOMEM; return -2; }
        ps->toks = t;
        ps->captok = cap;
    }
    return ps->ntok++;
}

static inline void skip_ws(Parser *ps) {
    if (ps->pos < ps->end && ps->s[ps->pos] > ' ') return; /* the usual case: no space to skip */
    while (ps->pos < ps->end) {
        unsigned char c = ps->s[ps->pos];
        if (c == ' ' || c == '\t' || c == '\r') ps->pos++;
        else if (c == '\n') { ps->pos++; ps->newline = 1; }
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

/* 8 if the 8 bytes at p are all printable ASCII other than '"' and '\\' (a string's usual bytes,
   stepped over 8 at once: the byte-wise scan was half of the parse), else the index of the first
   that is not. Bit tricks on a word: a byte below n sets its high bit in (v - n*0x01..) & ~v, and a
   byte equal to c is a zero byte of v ^ c; borrows only run upwards from a byte that is one, so the
   lowest bit set is the first such byte. */
static inline int plain8(const unsigned char *p) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
    uint64_t special = (v - ones * 0x20) | (quote - ones) | (backslash - ones);
    uint64_t found = ((special & ~v) | v) & highs;
    return found ? __builtin_ctzll(found) >> 3 : 8;
}

/* Validates a string starting after its opening quote; returns the position of the closing quote,
   or -1 if invalid (bad UTF-8, control character, bad escape, lone surrogate). */
static Py_ssize_t scan_string(Parser *ps, int *escaped) {
    const unsigned char *s = ps->s;
    Py_ssize_t i = ps->pos, end = ps->end;
    *escaped = 0;
    while (i < end) {
        if (i + 8 <= end) {
            int plain = plain8(s + i);
            i += plain;
            if (plain == 8) continue;
        }
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

/* Parses one value at ps->pos into tokens (its caller skipped the spaces before it, once); 0 on
   success, -1 if the body is not what we read exactly as orjson does (the caller gives up on the
   body), -2 on an error (parse_error). */
static int parse_value(Parser *ps) {
    if (ps->pos >= ps->end) return -1; /* the caller skipped the spaces before it */
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
                skip_ws(ps);
                if (is_obj) {
                    if (ps->pos >= ps->end || s[ps->pos] != '"') return -1;
                    int r = parse_value(ps);
                    if (r) return r;
                    skip_ws(ps);
                    if (ps->pos >= ps->end || s[ps->pos] != ':') return -1;
                    ps->pos++;
                    skip_ws(ps);
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
    Py_ssize_t exponent = i;
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
    if (i - exponent > 3) return -1; /* an exponent of 3 digits or more */
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
    const char *id_head; /* the body's item id head (a copy: the parse runs without the GIL) */
    Py_ssize_t id_head_len;
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

static int key_is_escaped(Item *it, Tok *t, const char *key, Py_ssize_t n) {
    Buf tmp = {0};
    int same = decode_string(it->s, t, &tmp) == 0 && tmp.len == n && memcmp(tmp.p, key, n) == 0;
    buf_free(&tmp);
    return same;
}

/* Whether a key token is `key`: inlined, its length and first byte compared before its bytes
   (member() runs it on every key of an object, tags' loop on every tag name). */
static inline int key_is_n(Item *it, int32_t ti, const char *key, Py_ssize_t n) {
    Tok *t = &it->toks[ti];
    if (!t->escaped)
        return t->end - t->start == n && (n == 0 || (it->s[t->start] == (unsigned char)key[0] && same_bytes(it->s + t->start, key, n)));
    return key_is_escaped(it, t, key, n);
}

/* The value token of `key` in object `obj` (the last one, as a dict keeps it), or -1. */
static inline int32_t member_n(Item *it, int32_t obj, const char *key, Py_ssize_t len) {
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

/* Decoded text as orjson writes a string: quoted, with its quotes, backslashes and control
   characters escaped; the runs between them copied whole. */
static int emit_decoded(const char *p, Py_ssize_t len, Buf *b) {
    static const char hex[] = "0123456789abcdef";
    if (buf_byte(b, '"') < 0) return -1;
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (buf_put(b, p + run, i - run) < 0) return -1;
        run = i + 1;
        char esc[6] = {'\\', 0};
        Py_ssize_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0'; esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
            n = 6;
        }
        if (buf_put(b, esc, n) < 0) return -1;
    }
    if (buf_put(b, p + run, len - run) < 0) return -1;
    return buf_byte(b, '"');
}

/* A string token as orjson writes it. Without escapes it holds no quote, backslash or control
   character (scan_string refuses those unescaped), so it is copied as it is: this runs for every
   key and value of a customDimensions, where decoding first cost a malloc and a free each. */
static int emit_string(Item *it, const Tok *t, Buf *b) {
    Py_ssize_t len = t->end - t->start;
    if (!t->escaped) {
        if (buf_reserve(b, len + 2) < 0) return -1;
        b->p[b->len] = '"';
        memcpy(b->p + b->len + 1, it->s + t->start, len);
        b->p[b->len + 1 + len] = '"';
        b->len += len + 2;
        return 0;
    }
    Buf dec = {0};
    int r = decode_string(it->s, t, &dec) < 0 ? -1 : emit_decoded(dec.p, dec.len, b);
    buf_free(&dec);
    return r;
}

/* Python's repr of the float a token holds (shortest round trip, ".0" added), into out: its
   length, or -1 (leave the item). */
static int float_repr(Item *it, const Tok *t, char *out, size_t size) {
    char tmp[64];
    Py_ssize_t n = t->end - t->start;
    memcpy(tmp, it->s + t->start, n);
    tmp[n] = 0;
    return double_repr(to_double(tmp), out, size);
}

static int same_key(Item *it, int32_t a, int32_t b) {
    Tok *x = &it->toks[a], *y = &it->toks[b];
    if (!x->escaped && !y->escaped)
        return x->end - x->start == y->end - y->start && same_bytes(it->s + x->start, it->s + y->start, x->end - x->start);
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
        int len = float_repr(it, t, text, sizeof(text));
        if (len < 0) return -1;
        const char *e = memchr(text, 'e', len);
        if (!stringify && e && e[1] == '-') return -1; /* orjson writes these its own way */
        if (stringify && buf_byte(b, '"') < 0) return -2;
        if (buf_put(b, text, len) < 0) return -2;
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


#endif /* _CENVELOPE_JSON_H */
