/* Part of the compiled fast path: an exception chain as envelope._exception maps it.
 * Included once, by _cenvelope.c (one translation unit: every function stays static). */
#ifndef _CENVELOPE_EXCEPTIONS_H
#define _CENVELOPE_EXCEPTIONS_H

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
    return emit_decoded(it->scratch.p + v.off, v.len, b);
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
    if (buf_put(b, "{\"id\":", 6) < 0) return -2;
    int32_t id = member(it, e, "id");
    if (id < 0) { if (buf_int(b, index + 1) < 0) return -2; }
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
                if (buf_int(b, levels[n]) < 0) return -2;
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


#endif /* _CENVELOPE_EXCEPTIONS_H */
