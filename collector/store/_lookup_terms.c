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
 * The writer runs this on every batch, so it reads 64 bytes of a value at a time as a bit per
 * byte (SSE2 on x86-64, 8-byte words elsewhere: -DLOOKUP_TERMS_SWAR builds that anywhere, and the
 * tests compare the two) and looks only at runs of 8 term bytes and, in JSON, at quotes and the
 * `.eE` of numbers: most bytes are none of these (bench/README.md, part 22r).
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
    unsigned char *term; /* scan_chars' run, lowered */
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

/* What a value's scan needs besides the value: where the entries go, the data buffer's end (a
   word may be read past the value, never past the buffer), the index's thresholds. */
typedef struct {
    Out *out;
    int64_t seq;
    Py_ssize_t limit, min_term, stop_zeros;
} Scan;

/* TERM_CHAR[c]: the lowered term character of ASCII byte c, 1 for the lead bytes of the three
   non-ASCII characters that can lower to one (checked below), 0 for a byte that ends a run. */
static unsigned char TERM_CHAR[256];

static void init_term_chars(void) {
    for (int c = '0'; c <= '9'; c++) TERM_CHAR[c] = (unsigned char)c;
    for (int c = 'a'; c <= 'z'; c++) TERM_CHAR[c] = (unsigned char)c;
    for (int c = 'A'; c <= 'Z'; c++) TERM_CHAR[c] = (unsigned char)(c + 32);
    TERM_CHAR[0xC4] = TERM_CHAR[0xC5] = TERM_CHAR[0xE2] = 1;
}

/* The lowered term character at p[i] (0: none) and the bytes it takes. */
static unsigned char term_char(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *width) {
    unsigned char t = TERM_CHAR[p[i]];
    *width = 1;
    if (t != 1) return t;
    unsigned char c = p[i];
    if (c == 0xC4 && i + 1 < n && p[i + 1] == 0xB0) { *width = 2; return 'i'; }
    if (c == 0xC5 && i + 1 < n && p[i + 1] == 0xBF) { *width = 2; return 's'; }
    if (c == 0xE2 && i + 2 < n && p[i + 1] == 0x84 && p[i + 2] == 0xAA) { *width = 3; return 'k'; }
    return 0;
}

/* Whether a term starts with stop_zeros zeros (<= min_term): a zero-padded counter, never indexed. */
static int zero_padded(const unsigned char *term, Py_ssize_t stop_zeros) {
    for (Py_ssize_t i = 0; i < stop_zeros; i++)
        if (term[i] != '0') return 0;
    return 1;
}

/* The entries of one value's text read a character at a time: every maximal run of term
   characters at least min_term long holding a digit, but those zero_padded. For a value with a
   non-ASCII term character (or a min_term below the words' filter). -1: out of memory. */
static int scan_chars(const unsigned char *p, Py_ssize_t n, const Scan *s) {
    Out *o = s->out;
    if (n > o->term_cap) {
        unsigned char *t = realloc(o->term, n);
        if (!t) return -1;
        o->term = t;
        o->term_cap = n;
    }
    Py_ssize_t len = 0, i = 0, width;
    int digit = 0;
    while (i <= n) {
        unsigned char t = i < n ? term_char(p, i, n, &width) : 0;
        if (t) {
            o->term[len++] = t;
            digit |= t <= '9';
            i += width;
            continue;
        }
        if (len >= s->min_term && digit && !zero_padded(o->term, s->stop_zeros) &&
            out_put(o, duck_hash(o->term, len), s->seq) < 0)
            return -1;
        len = 0;
        digit = 0;
        i++;
    }
    return 0;
}

/* Words of 8 bytes, read in text order (byte i of the text is byte i of the word from the low
   end) whatever the machine's order, so that one test classifies 8 bytes of text at once. */
#define ONES 0x0101010101010101ULL
#define HIGHS (ONES * 0x80)
#define LOWER (ONES * 0x20)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define TEXT_ORDER(w) __builtin_bswap64(w)
#else
#define TEXT_ORDER(w) (w)
#endif

/* The first k (< 64) bits, or bytes of a word in text order with k < 8 and 8 * k. */
static inline uint64_t first_bits(Py_ssize_t k) { return ((uint64_t)1 << k) - 1; }

/* Bytes i.. of a value of n bytes (i <= n <= limit, the data buffer's end): those from n on read
   as zero, which is no term character and no lead byte. */
static inline uint64_t word_at(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, Py_ssize_t limit) {
    uint64_t w = 0;
    if (limit - i >= 8) memcpy(&w, p + i, 8);
    else memcpy(&w, p + i, (size_t)(limit - i)); /* the buffer's last bytes */
    w = TEXT_ORDER(w);
    return n - i < 8 ? w & first_bits(8 * (n - i)) : w;
}

/* 0x80 in every byte of w that is an ASCII letter or digit: ranges tested on the low 7 bits
   (no byte's sum carries into the next), bytes >= 0x80 left out. */
static inline uint64_t alnum_bytes(uint64_t w) {
    uint64_t x = w & ~HIGHS, folded = x | LOWER;
    uint64_t digit = (x + ONES * (0x80 - '0')) & ~(x + ONES * (0x80 - '9' - 1));
    uint64_t letter = (folded + ONES * (0x80 - 'a')) & ~(folded + ONES * (0x80 - 'z' - 1));
    return (digit | letter) & ~w & HIGHS;
}

/* 0x80 in every byte of w that is an ASCII digit. */
static inline uint64_t digit_bytes(uint64_t w) {
    uint64_t x = w & ~HIGHS;
    return (x + ONES * (0x80 - '0')) & ~(x + ONES * (0x80 - '9' - 1)) & ~w & HIGHS;
}

/* 0x80 in every byte of w equal to c. */
static inline uint64_t bytes_equal(uint64_t w, unsigned char c) {
    uint64_t t = w ^ (ONES * c);
    return ~(((t & ~HIGHS) + ~HIGHS) | t) & HIGHS;
}

/* The first byte of a word (in text order) with its 0x80 bit set in `highs`, not 0. */
static inline Py_ssize_t first_byte(uint64_t highs) { return __builtin_ctzll(highs) >> 3; }

/* Whether one of the lead bytes `leads` (a bit per byte of p[b..]) starts a non-ASCII term
   character. */
static int starts_folded(const unsigned char *p, Py_ssize_t b, Py_ssize_t n, uint64_t leads) {
    Py_ssize_t width;
    for (; leads; leads &= leads - 1)
        if (term_char(p, b + __builtin_ctzll(leads), n, &width)) return 1;
    return 0;
}

#if defined(__SSE2__) && !defined(LOOKUP_TERMS_SWAR)
#include <emmintrin.h>

/* A bit per byte of 16: an ASCII letter or digit (a byte >= 0x80 is negative, in no range). */
static inline uint64_t alnum_bits16(__m128i x) {
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
    __m128i folded = _mm_or_si128(x, _mm_set1_epi8(0x20));
    __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)),
                                   _mm_cmplt_epi8(folded, _mm_set1_epi8('z' + 1)));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(digit, letter));
}

/* A bit per byte of 16: a lead byte of a character that may lower to a term character. */
static inline uint64_t lead_bits16(__m128i x) {
    __m128i i = _mm_cmpeq_epi8(x, _mm_set1_epi8((char)0xC4)), s = _mm_cmpeq_epi8(x, _mm_set1_epi8((char)0xC5));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(i, s), _mm_cmpeq_epi8(x, _mm_set1_epi8((char)0xE2))));
}

/* p[b, b + 64), read 16 bytes at a time: in place, or the buffer's last bytes copied to `last`
   (zeros after them), to read none past it. */
static const unsigned char *block_at(const unsigned char *p, Py_ssize_t b, Py_ssize_t limit, unsigned char *last) {
    if (limit - b >= 64) return p + b;
    memset(last, 0, 64);
    memcpy(last, p + b, (size_t)(limit - b));
    return last;
}

static inline uint64_t equal_bits16(__m128i x, char c) {
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c)));
}

/* A bit per byte of p[b, b + 64) (up to n): its quotes, backslashes and fraction or exponent
   marks (`.eE`), for dynamic_safe. */
static void json_bits(const unsigned char *p, Py_ssize_t b, Py_ssize_t n, Py_ssize_t limit, uint64_t *quotes,
                      uint64_t *escapes, uint64_t *marks) {
    unsigned char last[64];
    const unsigned char *q = block_at(p, b, limit, last);
    Py_ssize_t size = n - b < 64 ? n - b : 64;
    *quotes = *escapes = *marks = 0;
    for (Py_ssize_t k = 0; k < size; k += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(q + k));
        *quotes |= equal_bits16(x, '"') << k;
        *escapes |= equal_bits16(x, '\\') << k;
        *marks |= (equal_bits16(x, '.') | equal_bits16(_mm_or_si128(x, _mm_set1_epi8(0x20)), 'e')) << k;
    }
    if (size < 64) {
        *quotes &= first_bits(size);
        *escapes &= first_bits(size);
        *marks &= first_bits(size);
    }
}

/* A bit per byte of p[b, b + 64): whether it is an ASCII letter or digit; *folded set where a
   non-ASCII term character starts there. SSE2 (every x86-64 has it): 16 bytes a test. */
static uint64_t term_bits(const unsigned char *p, Py_ssize_t b, Py_ssize_t n, Py_ssize_t limit, int *folded) {
    unsigned char last[64];
    const unsigned char *q = block_at(p, b, limit, last);
    Py_ssize_t size = n - b < 64 ? n - b : 64;
    uint64_t bits = 0, highs = 0;
    for (Py_ssize_t k = 0; k < size; k += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(q + k));
        bits |= alnum_bits16(x) << k;
        highs |= (uint64_t)(unsigned)_mm_movemask_epi8(x) << k;
    }
    if (size < 64) {
        bits &= first_bits(size);
        highs &= first_bits(size);
    }
    if (highs) {
        uint64_t leads = 0;
        for (Py_ssize_t k = 0; k < size; k += 16) leads |= lead_bits16(_mm_loadu_si128((const __m128i *)(q + k))) << k;
        if (starts_folded(p, b, n, leads & highs)) *folded = 1;
    }
    return bits;
}
#else
/* The 0x80 bits of a word's bytes as 8 bits, byte i to bit i. */
static inline uint64_t gather(uint64_t highs) { return ((highs >> 7) * 0x0102040810204080ULL) >> 56; }

/* As above, a word of 8 bytes at a time (SWAR), where SSE2 is not there. */
static uint64_t term_bits(const unsigned char *p, Py_ssize_t b, Py_ssize_t n, Py_ssize_t limit, int *folded) {
    uint64_t bits = 0;
    for (Py_ssize_t k = 0; k < 64 && b + k < n; k += 8) {
        uint64_t w = word_at(p, b + k, n, limit);
        if (w & HIGHS) {
            uint64_t leads = bytes_equal(w, 0xC4) | bytes_equal(w, 0xC5) | bytes_equal(w, 0xE2);
            if (starts_folded(p, b + k, n, gather(leads))) *folded = 1;
        }
        bits |= gather(alnum_bytes(w)) << k;
    }
    return bits;
}

static void json_bits(const unsigned char *p, Py_ssize_t b, Py_ssize_t n, Py_ssize_t limit, uint64_t *quotes,
                      uint64_t *escapes, uint64_t *marks) {
    *quotes = *escapes = *marks = 0;
    for (Py_ssize_t k = 0; k < 64 && b + k < n; k += 8) {
        uint64_t w = word_at(p, b + k, n, limit);
        *quotes |= gather(bytes_equal(w, '"')) << k;
        *escapes |= gather(bytes_equal(w, '\\')) << k;
        *marks |= gather(bytes_equal(w, '.') | bytes_equal(w | LOWER, 'e')) << k;
    }
}
#endif

/* The bits j of a block (`next` the following one's) that start 8 term bytes: halving the
   window three times, each step's next block good for the bits the following step reads. */
static inline uint64_t eight_starts(uint64_t bits, uint64_t next) {
    uint64_t two = bits & ((bits >> 1) | (next << 63)), two_next = next & (next >> 1);
    uint64_t four = two & ((two >> 2) | (two_next << 62)), four_next = two_next & (two_next >> 2);
    return four & ((four >> 4) | (four_next << 60));
}

/* Where the run of term bytes from `start` (in the block at b, `next` the following one's bits)
   ends: from the bits while the run is in the two blocks, then a word at a time. */
static Py_ssize_t run_end(const unsigned char *p, Py_ssize_t start, Py_ssize_t n, Py_ssize_t limit, Py_ssize_t b,
                          uint64_t bits, uint64_t next) {
    uint64_t ends = ~bits & ~first_bits(start - b);
    if (ends) return b + __builtin_ctzll(ends);
    if (~next) return b + 64 + __builtin_ctzll(~next);
    Py_ssize_t i = b + 128;
    for (;;) {
        uint64_t stops = ~alnum_bytes(word_at(p, i, n, limit)) & HIGHS;
        if (stops) return i + first_byte(stops);
        i += 8;
    }
}

/* The entry of the ASCII run p[start, end) if it is a term: DuckDB's hash of it lowered, a word
   at a time as it is read (a letter or digit lowers by its 0x20 bit); a letter has 0x40 set, a
   digit not. -1: out of memory. */
static int put_ascii_run(const unsigned char *p, Py_ssize_t start, Py_ssize_t end, const Scan *s) {
    Py_ssize_t len = end - start, i = 0;
    if (len < s->min_term || zero_padded(p + start, s->stop_zeros)) return 0;
    uint64_t h = 0xe17a1465ULL ^ ((uint64_t)len * 0xc6a4a7935bd1e995ULL), letters = ~(uint64_t)0;
    for (p += start; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        letters &= w;
        h ^= w | LOWER;
        h *= MULT;
    }
    if (i < len) { /* the last 8 bytes of the run (len >= 8), shifted to its tail */
        uint64_t w, mask = first_bits(8 * (len - i));
        memcpy(&w, p + len - 8, 8);
        w = TEXT_ORDER(w) >> (8 * (8 - (len - i)));
        letters &= w | ~mask;
        h ^= TEXT_ORDER(w | (LOWER & mask));
        h *= MULT;
    }
    if ((letters & (ONES * 0x40)) == ONES * 0x40) return 0; /* no digit */
    h ^= h >> 32;
    h *= MULT;
    h ^= h >> 32;
    h *= MULT;
    h ^= h >> 32;
    return out_put(s->out, h, s->seq);
}

/* The entries of a value's text as scan_chars makes them, 64 bytes at a time: a bit per byte
   says which are ASCII letters or digits, and only runs of 8 of them are read (the words'
   filter: min_term >= 8). 1: the value holds a non-ASCII term character, for scan_chars (its
   entries made so far are the caller's to drop); -1: out of memory. */
static int scan_words(const unsigned char *p, Py_ssize_t n, const Scan *s) {
    int folded = 0;
    Py_ssize_t end = 0, width;
    uint64_t bits = term_bits(p, 0, n, s->limit, &folded);
    for (Py_ssize_t b = 0; b < n; b += 64) {
        uint64_t next = b + 64 < n ? term_bits(p, b + 64, n, s->limit, &folded) : 0;
        if (folded) return 1;
        uint64_t starts = eight_starts(bits, next);
        if (end > b) starts &= end - b >= 64 ? 0 : ~first_bits(end - b); /* in a run read on */
        while (starts) {
            Py_ssize_t start = b + __builtin_ctzll(starts);
            end = run_end(p, start, n, s->limit, b, bits, next);
            if (end < n && p[end] >= 0x80 && term_char(p, end, n, &width)) return 1;
            if (put_ascii_run(p, start, end, s) < 0) return -1;
            starts = end - b >= 64 ? 0 : starts & ~first_bits(end - b);
        }
        bits = next;
    }
    return 0;
}

/* The entries of one value's text (see scan_chars). -1: out of memory. */
static int scan_text(const unsigned char *p, Py_ssize_t n, const Scan *s) {
    if (n < s->min_term) return 0; /* a term character takes a byte at least */
    if (s->min_term < 8) return scan_chars(p, n, s);
    Py_ssize_t mark = s->out->len;
    int read = scan_words(p, n, s);
    if (read <= 0) return read;
    s->out->len = mark;
    return scan_chars(p, n, s);
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

/* Whether a number token with a fraction (its last `.` at p[dot]) is as DuckDB renders it: the shortest digits that read
   back to its double, in fixed notation (DuckDB renders `2.50` as `2.5`, `1e7` as `10000000.0`).
   Its form is checked here: fixed notation between 1e-5 and 1e16 (where orjson and Python's repr
   write it so, and DuckDB renders it alike: tests/kql/test_lookup_terms_compiled.py), no trailing
   zero but `.0`'s, at most 17 significant digits. Up to 15 digits that form is the shortest
   (two decimals of 15 digits never read as one double); with 16 or 17 it is the shortest as every
   writer of the store writes it: a dynamic value's number is never the sender's text but the
   parsed double written again, by orjson (values.dumps_dynamic) or the compiled path's
   emitter (Python's repr), both shortest. Checking that here (strtod and dtoa per number) cost
   more than the whole index. */
static int canonical_fraction(const unsigned char *p, Py_ssize_t n, Py_ssize_t dot) {
    Py_ssize_t i = p[0] == '-';
    if (dot == i || dot == n - 1) return 0;
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

/* Where a JSON string from p[i] (after its opening quote) ends: after its closing quote, n for
   one left open; -1 where it holds a `\u` escape. Read to its next quote or backslash 8 bytes
   at a time. */
static Py_ssize_t string_end(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, Py_ssize_t limit) {
    while (i < n) {
        uint64_t w = word_at(p, i, n, limit), stops = bytes_equal(w, '"') | bytes_equal(w, '\\');
        if (!stops) {
            i += 8;
            continue;
        }
        i += first_byte(stops);
        if (p[i] == '"') return i + 1;
        if (i + 1 < n && p[i + 1] == 'u') return -1;
        i += 2; /* a short escape: the escaped byte ends nothing */
    }
    return n;
}

/* Where a JSON number token from p[start] (a `-` or a digit) ends: its bytes are digits and
   `-+.eE`; -1 where it is not rendered as written (an exponent, a fraction not in canonical
   form). Read 8 bytes at a time. */
static Py_ssize_t number_end(const unsigned char *p, Py_ssize_t start, Py_ssize_t n, Py_ssize_t limit) {
    Py_ssize_t i = start, last_dot = -1;
    for (;;) {
        uint64_t w = word_at(p, i, n, limit), exponents = bytes_equal(w | LOWER, 'e'), dot = bytes_equal(w, '.');
        uint64_t ends = ~(digit_bytes(w) | exponents | dot | bytes_equal(w, '-') | bytes_equal(w, '+')) & HIGHS;
        uint64_t token = ends ? first_bits(8 * first_byte(ends)) : ~(uint64_t)0;
        if (exponents & token) return -1;
        if (dot & token) last_dot = i + ((63 - __builtin_clzll(dot & token)) >> 3);
        if (!ends) {
            i += 8;
            continue;
        }
        i += first_byte(ends);
        break;
    }
    return last_dot >= 0 && !canonical_fraction(p + start, i - start, last_dot - start) ? -1 : i;
}

static int number_char(unsigned char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* The number token around a fraction or exponent mark at p[j], outside strings: the run of
   number characters holding it, from its first `-` or digit (the bytes before are passed one at
   a time, as the walk does). Returns the run's end; -1 where its token is not rendered as written. */
static Py_ssize_t mark_run_end(const unsigned char *p, Py_ssize_t j, Py_ssize_t n, Py_ssize_t limit) {
    Py_ssize_t start = j;
    while (start > 0 && number_char(p[start - 1])) start--;
    while (start < n && number_char(p[start]) && p[start] != '-' && !(p[start] >= '0' && p[start] <= '9')) start++;
    if (start == n || !number_char(p[start])) return start; /* no token: nothing in it is a number's */
    return number_end(p, start, n, limit);
}

/* The tokens' walk: a string's or number's start found 8 bytes at a time, a string read to its
   next quote or backslash. */
static int walk_json(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, Py_ssize_t limit) {
    while (i < n) {
        uint64_t w = word_at(p, i, n, limit), starts = bytes_equal(w, '"') | bytes_equal(w, '-') | digit_bytes(w);
        if (!starts) {
            i += 8;
            continue;
        }
        i += first_byte(starts);
        i = p[i] == '"' ? string_end(p, i + 1, n, limit) : number_end(p, i, n, limit);
        if (i < 0) return 0;
    }
    return 1;
}

/* Whether the terms of a stored JSON text are those of DuckDB's `->> '$'` text of it. That text
   re-renders the value: a top-level string unescaped, `\uXXXX` escapes decoded (but the control
   characters'), numbers with a fraction or an exponent in
   their shortest form (`1e7` reads `10000000.0`, `1e+25` `1e25`); integers, the short escapes,
   whitespace between tokens and raw UTF-8 keep their terms. So: no top-level string with an
   escape, no `\u` escape, no exponent, every fraction already in its shortest fixed form.
   Without a backslash (almost every text), a string is what lies between a quote and the next,
   so 64 bytes at a time: a bit per quote, their running parity the bytes inside strings, and
   only the `.eE` outside strings are looked at (an integer is always rendered as written). */
static int dynamic_safe(const unsigned char *p, Py_ssize_t n, Py_ssize_t limit) {
    Py_ssize_t i = 0, checked = 0;
    while (i < n && is_ws(p[i])) i++;
    if (i < n && p[i] == '"') return memchr(p + i, '\\', n - i) == NULL;
    uint64_t inside = 0; /* all ones while a string goes on from the block before */
    for (Py_ssize_t b = 0; b < n; b += 64) {
        uint64_t quotes, escapes, marks;
        json_bits(p, b, n, limit, &quotes, &escapes, &marks);
        if (escapes) return walk_json(p, i, n, limit);
        uint64_t strings = quotes;
        for (int shift = 1; shift < 64; shift *= 2) strings ^= strings << shift;
        strings ^= inside;
        inside = 0 - (strings >> 63);
        marks &= ~(strings | quotes);
        if (checked > b) marks &= checked - b >= 64 ? 0 : ~first_bits(checked - b);
        while (marks) {
            checked = mark_run_end(p, b + __builtin_ctzll(marks), n, limit);
            if (checked < 0) return 0;
            marks &= checked - b >= 64 ? 0 : ~first_bits(checked - b);
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

/* A column's tuple (validity or None, offsets, data, offset, dynamic), read without a format
   string's parse (PyArg_ParseTuple cost ~1/10 of a small batch's call). 0: a Python error. */
static int read_column(PyObject *given, PyObject **v, PyObject **o, PyObject **d, Column *c) {
    if (!PyTuple_Check(given) || PyTuple_GET_SIZE(given) != 5) {
        PyErr_SetString(PyExc_TypeError, "a column is (validity or None, offsets, data, offset, dynamic)");
        return 0;
    }
    *v = PyTuple_GET_ITEM(given, 0);
    *o = PyTuple_GET_ITEM(given, 1);
    *d = PyTuple_GET_ITEM(given, 2);
    c->offset = PyLong_AsSsize_t(PyTuple_GET_ITEM(given, 3));
    if (c->offset == -1 && PyErr_Occurred()) return 0;
    c->dynamic = PyObject_IsTrue(PyTuple_GET_ITEM(given, 4));
    return c->dynamic >= 0;
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
        if (!read_column(PyList_GET_ITEM(list, k), &v, &o, &d, c)) goto done;
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
    Scan scan = {&out, 0, 0, min_term, stop_zeros};
    for (Py_ssize_t r = 0; r < rows && !failed && !bad_offsets; r++) {
        Py_ssize_t mark = out.len;
        scan.seq = seq[r];
        int refused = 0;
        for (Py_ssize_t j = 0; j < ncols && !refused; j++) {
            const Column *c = &cols[j];
            if (!valid(c, r)) continue;
            const int32_t *off = (const int32_t *)c->offsets.buf + c->offset + r;
            if (off[0] < 0 || off[1] < off[0] || off[1] > c->data.len) { bad_offsets = 1; break; }
            const unsigned char *p = (const unsigned char *)c->data.buf + off[0];
            Py_ssize_t n = off[1] - off[0];
            scan.limit = c->data.len - off[0];
            if (c->dynamic && !dynamic_safe(p, n, scan.limit)) { refused = 1; break; }
            if (scan_text(p, n, &scan) < 0) { failed = 1; break; }
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
