/* Part of the compiled fast path: numbers read and Python's float repr written without the GIL.
 * Included once, by _cenvelope.c (one translation unit: every function stays static). */
#ifndef _CENVELOPE_FLOAT_H
#define _CENVELOPE_FLOAT_H

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<fpu_control.h>) /* glibc's: without it (musl), exact_double has no x87 step */
#include <fpu_control.h>
#endif
#endif

#include "_cenvelope_ryu.h"

/* Numbers read as JSON writes them, whatever LC_NUMERIC says: strtod_l with the C locale, made at
   import. glibc's strtod is correctly rounded, as Python's own float() is. */
static locale_t c_locale;

static const double EXACT_POWERS[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number's text as a decimal: *neg, the digits as an integer (*w, at most 19 significant
   ones) and the power of ten that scales it (*q). 0 if the text is of another shape or has more
   digits: strtod_l reads it. */
static int decimal_of(const char *p, int *neg, uint64_t *w, int *q) {
    int digits = 0, scale = 0;
    uint64_t m = 0;
    *neg = *p == '-';
    p += *neg;
    if (*p < '0' || *p > '9') return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (m == 0 && *p == '0') continue;
        if (++digits > 19) return 0;
        m = m * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return 0;
        for (; *p >= '0' && *p <= '9'; p++, scale--) {
            if (m == 0 && *p == '0') continue;
            if (++digits > 19) return 0;
            m = m * 10 + (uint64_t)(*p - '0');
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        int sign = *p == '-' ? -1 : 1, x = 0;
        if (*p == '-' || *p == '+') p++;
        if (*p < '0' || *p > '9') return 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (x > 1000) return 0;
            x = x * 10 + (*p - '0');
        }
        scale += sign * x;
    }
    if (*p) return 0;
    *w = m;
    *q = scale;
    return 1;
}

/* w * 10**q correctly rounded, where one rounding step can be trusted; 0 if not (strtod_l's then).
   Clinger's fast path: w and 10**|q| both exact doubles, so the one multiply or divide is the
   correctly rounded result. Past 2**53 (the 17-digit floats the SDKs write), x87's extended
   precision where there is one: w (below 2**64) and 10**|q| (|q| <= 27) are exact in its 64-bit
   mantissa, the one operation rounds once to 64 bits, and rounding that to 53 bits gives the
   correctly rounded double unless it landed exactly on a midpoint between two doubles (its low
   11 bits 0x400): the exact value and the 64-bit one are on the same side of every midpoint that
   is not the 64-bit result itself, midpoints being 64-bit numbers. */
static int exact_double(uint64_t w, int q, double *out) {
    if (w <= (1ull << 53) && q >= -22 && q <= 22) {
        *out = q >= 0 ? (double)w * EXACT_POWERS[q] : (double)w / EXACT_POWERS[-q];
        return 1;
    }
#if defined(__x86_64__) && LDBL_MANT_DIG == 64 && defined(_FPU_GETCW)
    if (q < -27 || q > 27) return 0;
    fpu_control_t cw;
    _FPU_GETCW(cw);
    if ((cw & _FPU_EXTENDED) != _FPU_EXTENDED || (cw & _FPU_RC_ZERO) != _FPU_RC_NEAREST) return 0;
    static const long double POWERS[28] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
                                           1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
                                           1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
    long double p = POWERS[q < 0 ? -q : q]; /* exact: 10**27 is 5**27 (below 2**64) times 2**27 */
    long double x = q >= 0 ? (long double)w * p : (long double)w / p;
    uint64_t mantissa;
    memcpy(&mantissa, &x, sizeof(mantissa));
    if ((mantissa & 0x7ff) == 0x400) return 0;
    *out = (double)x;
    return 1;
#else
    return 0;
#endif
}

/* A JSON number's text as the double Python's float() reads: exact_double where it can, else
   glibc's strtod_l (correctly rounded, as Python's own float() is) with the C locale. */
static double to_double(const char *text) {
    int neg, q;
    uint64_t w;
    double v;
    if (decimal_of(text, &neg, &w, &q) && exact_double(w, q, &v)) return neg ? -v : v;
    return strtod_l(text, NULL, c_locale);
}

/* The decimal digits of the double in bits (nonzero, finite; its sign ignored), Python's repr's:
   dtoa's mode 0 takes the shortest digits that read back as the double, the nearest to it of
   those, its rounding interval's bounds included when its binary mantissa is even (they read back
   under round-half-even), lopsided at a power of two past the smallest normal exponent; of two
   equally near (2**50 + 0.25: ...24.2 and ...24.3) it takes the even last digit. Ryu's d2d takes
   the same interval, the nearest, the even one of two (its "round even if the exact number is
   .....50..0"). Held to repr over every power of two, exact midpoints and millions of others
   (bench/README.md, part 22h) and in tests/ingest/test_compiled_gil_free.py. Returns the digit
   count; *exponent is the first digit's power of ten. */
static int shortest_digits(uint64_t bits, char *digits, int *exponent) {
    floating_decimal_64 d = d2d(bits & ((1ull << DOUBLE_MANTISSA_BITS) - 1), (uint32_t)((bits >> DOUBLE_MANTISSA_BITS) & 0x7ff));
    static const char PAIRS[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char text[24];
    int at = sizeof(text);
    uint64_t m = d.mantissa;
    for (; m >= 100; m /= 100) { at -= 2; memcpy(text + at, PAIRS + 2 * (m % 100), 2); } /* two digits a division */
    if (m >= 10) { at -= 2; memcpy(text + at, PAIRS + 2 * m, 2); }
    else text[--at] = (char)('0' + m);
    int n = (int)sizeof(text) - at;
    memcpy(digits, text + at, n);
    while (n > 1 && digits[n - 1] == '0') { n--; d.exponent++; }
    *exponent = d.exponent + n - 1;
    return n;
}

/* Python's repr of a double, without the GIL (PyOS_double_to_string needs it): the shortest digits
   that read back as v, the nearest to v of those (shortest_digits), in fixed notation from 1e-4 to
   below 1e16, else as d.ddde+XX; its length (out is not NUL-terminated), -1 leave the item (not
   finite, or no room in out). */
static int double_repr(double v, char *out, size_t size) {
    if (v == 0.0) {
        int len = signbit(v) ? 4 : 3;
        if ((size_t)len > size) return -1;
        memcpy(out, signbit(v) ? "-0.0" : "0.0", len);
        return len;
    }
    if (!isfinite(v)) return -1;
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    char digits[24];
    int e = 0;
    int n = shortest_digits(bits, digits, &e);
    char text[48];
    int len = 0, decpt = e + 1;
    if (signbit(v)) text[len++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            text[len++] = '0'; text[len++] = '.';
            for (int k = 0; k < -decpt; k++) text[len++] = '0';
            memcpy(text + len, digits, n); len += n;
        } else if (decpt >= n) {
            memcpy(text + len, digits, n); len += n;
            for (int k = 0; k < decpt - n; k++) text[len++] = '0';
            text[len++] = '.'; text[len++] = '0';
        } else {
            memcpy(text + len, digits, decpt); len += decpt;
            text[len++] = '.';
            memcpy(text + len, digits + decpt, n - decpt); len += n - decpt;
        }
    } else {
        text[len++] = digits[0];
        if (n > 1) { text[len++] = '.'; memcpy(text + len, digits + 1, n - 1); len += n - 1; }
        int x = abs(decpt - 1); /* as "e%+03d" writes it: two digits at least (1e-05, 5e-324) */
        text[len++] = 'e'; text[len++] = decpt - 1 < 0 ? '-' : '+';
        if (x >= 100) text[len++] = (char)('0' + x / 100);
        text[len++] = (char)('0' + x / 10 % 10); text[len++] = (char)('0' + x % 10);
    }
    if ((size_t)len > size) return -1;
    memcpy(out, text, len);
    return len;
}


#endif /* _CENVELOPE_FLOAT_H */
