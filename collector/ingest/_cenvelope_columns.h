/* Part of the compiled fast path: values judged as values.py judges them, the tables' columns, one row.
 * Included once, by _cenvelope.c (one translation unit: every function stays static). */
#ifndef _CENVELOPE_COLUMNS_H
#define _CENVELOPE_COLUMNS_H

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
        frac = to_double(tmp);
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
static Py_ssize_t BASE_TYPE_LENGTHS[NTABLES];

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
    int mixed_ikeys;        /* not every row's iKey is the first row's */
} Table;

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

/* Appends a row's value (len -1: null). Most of the ~45 string columns are null in every row of a
   table (a trace has no url, no exception fields), and such a column's buffers are never read (export_child),
   so nothing is written to a column until its first value: then the nulls before it, at once. */
static int str_push(StrCol *c, Py_ssize_t row, const char *p, Py_ssize_t len) {
    if (c->offsets.len == 0) {
        if (len < 0) { c->nulls++; return 0; }
        Py_ssize_t offsets = 4 * (row + 1), bits = (row + 7) / 8;
        if (buf_reserve(&c->offsets, offsets) < 0 || buf_reserve(&c->bits, bits) < 0) return -1;
        memset(c->offsets.p, 0, offsets);
        c->offsets.len = offsets;
        if (bits) memset(c->bits.p, 0, bits);
        c->bits.len = bits;
    }
    if (len < 0) {
        c->nulls++;
        if (bit_set(&c->bits, row, 0) < 0) return -1;
    } else {
        if (buf_put(&c->data, p, len) < 0 || bit_set(&c->bits, row, 1) < 0) return -1;
    }
    if (c->data.len > INT32_MAX) { parse_error = E_OVERFLOW; return -1; }
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


#endif /* _CENVELOPE_COLUMNS_H */
