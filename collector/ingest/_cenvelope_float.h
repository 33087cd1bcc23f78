/* Part of the compiled fast path: numbers read and Python's float repr written without the GIL.
 * Included once, by _cenvelope.c (one translation unit: every function stays static). */
#ifndef _CENVELOPE_FLOAT_H
#define _CENVELOPE_FLOAT_H

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Numbers read as JSON writes them, whatever LC_NUMERIC says: strtod_l with the C locale, made at
   import. glibc's strtod is correctly rounded, as Python's own float() is. */
static locale_t c_locale;

static double to_double(const char *text) { return strtod_l(text, NULL, c_locale); }

/* The digits of v (p significant ones, trailing zeros dropped) and its decimal exponent, as
   printf's %.*e rounds them (correctly, from the exact binary value); 1 if they read back as v. */
static int digits_of(double v, int p, char *digits, int *ndigits, int *exponent) {
    char text[48], back[48];
    snprintf(text, sizeof(text), "%.*e", p - 1, fabs(v));
    int n = 0;
    const char *c = text;
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9') digits[n++] = *c; /* skips the decimal point, whatever the locale's */
    if (*c != 'e') return 0;
    *exponent = atoi(c + 1);
    while (n > 1 && digits[n - 1] == '0') n--;
    *ndigits = n;
    snprintf(back, sizeof(back), "%.*se%d", n, digits, *exponent - (n - 1));
    return to_double(back) == fabs(v);
}

/* Python's repr of a double, without the GIL (PyOS_double_to_string needs it): the shortest digits
   that read back as v, the nearest to v of those (dtoa's mode 0), in fixed notation from 1e-4 to
   below 1e16, else as d.ddde+XX; 0 ok, -1 leave the item. For a normal double the 15 nearest
   digits are that shortest form whenever they read back (a 15-digit step is wider than the whole
   interval that rounds to v, so at most one such candidate exists, and it is the nearest); with 16
   or 17 the nearest candidate that reads back is dtoa's, except at a power of two, whose interval
   is lopsided (dtoa may find a 16-digit one above that is not the nearest): those, and subnormals
   (wide intervals), are the Python path's. tests/ingest/test_compiled_path.py compares with repr. */
static int double_repr(double v, char *out, size_t size) {
    if (v == 0.0) return snprintf(out, size, signbit(v) ? "-0.0" : "0.0") < (int)size ? 0 : -1;
    if (!isfinite(v) || fabs(v) < DBL_MIN) return -1;
    char digits[24];
    int n = 0, e = 0, p = 15;
    int mantissa_bits;
    double fraction = frexp(fabs(v), &mantissa_bits);
    while (!digits_of(v, p, digits, &n, &e)) {
        if (++p > 17 || fraction == 0.5) return -1; /* a power of two past 15 digits: see above */
    }
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
        snprintf(text + len, sizeof(text) - len, "e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
    }
    if (strlen(text) >= size) return -1;
    strcpy(out, text);
    return 0;
}


#endif /* _CENVELOPE_FLOAT_H */
