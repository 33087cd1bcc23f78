/* Part of the compiled fast path: numbers read and Python's float repr written without the GIL.
 * Included once, by _cenvelope.c (one translation unit: every function stays static). */
#ifndef _CENVELOPE_FLOAT_H
#define _CENVELOPE_FLOAT_H

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_cenvelope_ryu.h"

/* Numbers read as JSON writes them, whatever LC_NUMERIC says: strtod_l with the C locale, made at
   import. glibc's strtod is correctly rounded, as Python's own float() is. */
static locale_t c_locale;

static double to_double(const char *text) { return strtod_l(text, NULL, c_locale); }

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
    char reversed[24];
    int n = 0;
    for (uint64_t m = d.mantissa; m; m /= 10) reversed[n++] = (char)('0' + m % 10);
    for (int k = 0; k < n; k++) digits[k] = reversed[n - 1 - k];
    while (n > 1 && digits[n - 1] == '0') { n--; d.exponent++; }
    *exponent = d.exponent + n - 1;
    return n;
}

/* Python's repr of a double, without the GIL (PyOS_double_to_string needs it): the shortest digits
   that read back as v, the nearest to v of those (shortest_digits), in fixed notation from 1e-4 to
   below 1e16, else as d.ddde+XX; 0 ok, -1 leave the item (not finite, or no room in out). */
static int double_repr(double v, char *out, size_t size) {
    if (v == 0.0) return snprintf(out, size, signbit(v) ? "-0.0" : "0.0") < (int)size ? 0 : -1;
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
        text[len] = 0;
    } else {
        text[len++] = digits[0];
        if (n > 1) { text[len++] = '.'; memcpy(text + len, digits + 1, n - 1); len += n - 1; }
        int x = abs(decpt - 1); /* as "e%+03d" writes it: two digits at least (1e-05, 5e-324) */
        text[len++] = 'e'; text[len++] = decpt - 1 < 0 ? '-' : '+';
        if (x >= 100) text[len++] = (char)('0' + x / 100);
        text[len++] = (char)('0' + x / 10 % 10); text[len++] = (char)('0' + x % 10);
        text[len] = 0;
    }
    if (strlen(text) >= size) return -1;
    strcpy(out, text);
    return 0;
}


#endif /* _CENVELOPE_FLOAT_H */
