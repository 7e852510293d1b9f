/* The fast path's tape scanner in C: ``tape_block.scan``'s checks and columns in one pass.
 *
 * ``scan`` reads a chunk of whole lines and fills the caller's arrays, or returns None when
 * any row is not plainly written (then the chunk takes the exact row reader, exactly as when
 * the numpy scanner says no). It accepts what the numpy scanner accepts, no more:
 * ASCII without quotes or control bytes other than the newline ending each row, exactly
 * ``width`` cells a row, one ``YYYY-MM-DDTHH:MM:SS+HH:MM`` time (a real calendar date, years
 * 1900-2200), text cells of 1-24 bytes, plain positive decimals of at most 18 digits strictly
 * inside their bounds (blank only where allowed), and blank cells where they must be.
 * The numbers are floats that only pick rows for the exact Decimal step (core.prefilter).
 * The GIL is released while it scans.
 */
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { K_SKIP = 0, K_TIME = 1, K_SYMBOL = 2, K_CURRENCY = 3, K_NUMBER = 4, K_EMPTY = 5 };

#define NAME_BYTES 24
#define MAX_NAMES 4096
#define SLOTS 8192 /* hash slots, a power of two above MAX_NAMES */
#define MAX_DIGITS 18
#define MIN_YEAR 1900
#define MAX_YEAR 2200

typedef struct {
    int count;
    int32_t last; /* the code found last (-1: none), and its key */
    uint64_t last_key[NAME_BYTES / 8];
    uint8_t last_len;
    int32_t slot[SLOTS]; /* name index + 1, 0: free */
    uint8_t len[MAX_NAMES];
    uint64_t name[MAX_NAMES][NAME_BYTES / 8]; /* zero-padded */
} Names;

static const double POW10[MAX_DIGITS + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
    1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
};

static int32_t find_name(Names *t, const uint64_t *key, Py_ssize_t len);

/* The code of a text cell (1-24 bytes), or -1 when it is too long or too many names. */
static int32_t name_code(Names *t, const uint8_t *p, Py_ssize_t len) {
    if (len < 1 || len > NAME_BYTES) return -1;
    uint64_t key[NAME_BYTES / 8] = {0, 0, 0};
    memcpy(key, p, (size_t)len);
    if (t->last >= 0 && key[0] == t->last_key[0] && key[1] == t->last_key[1] &&
        key[2] == t->last_key[2] && t->last_len == len)
        return t->last;
    int32_t code = find_name(t, key, len);
    if (code >= 0) {
        t->last = code;
        memcpy(t->last_key, key, sizeof key);
        t->last_len = (uint8_t)len;
    }
    return code;
}

static int32_t find_name(Names *t, const uint64_t *key, Py_ssize_t len) {
    uint64_t h = (key[0] ^ (key[1] * 0x9E3779B97F4A7C15ull) ^ (key[2] * 0xC2B2AE3D27D4EB4Full));
    h *= 0x9E3779B97F4A7C15ull;
    uint32_t at = (uint32_t)(h >> 40) & (SLOTS - 1);
    for (;;) {
        int32_t k = t->slot[at];
        if (k == 0) break;
        k -= 1;
        const uint64_t *name = t->name[k];
        if (name[0] == key[0] && name[1] == key[1] && name[2] == key[2] && t->len[k] == len)
            return k;
        at = (at + 1) & (SLOTS - 1);
    }
    if (t->count >= MAX_NAMES) return -1;
    int32_t k = t->count++;
    t->len[k] = (uint8_t)len;
    memcpy(t->name[k], key, NAME_BYTES);
    t->slot[at] = k + 1;
    return k;
}

/* 1: a number in *out; 2: blank; 0: anything else. */
static int parse_number(const uint8_t *p, Py_ssize_t len, double *out) {
    if (len == 0) return 2;
    if (len > MAX_DIGITS + 1) return 0;
    uint64_t m = 0;
    int digits = 0;
    Py_ssize_t point = -1;
    for (Py_ssize_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c >= '0' && c <= '9') {
            m = m * 10 + (uint64_t)(c - '0');
            digits++;
        } else if (c == '.' && point < 0) {
            point = i;
        } else {
            return 0;
        }
    }
    if (digits < 1 || digits > MAX_DIGITS) return 0;
    int frac = point < 0 ? 0 : (int)(len - point - 1);
    *out = (double)m / POW10[frac];
    return 1;
}

static inline int two(const uint8_t *p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

/* Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

typedef struct {
    uint64_t date;   /* bytes 0-7 of the last time read */
    uint64_t rest;   /* its bytes 8-9 (the day) and 19-24 (the UTC offset) */
    int valid;
    int64_t base; /* its midnight in epoch seconds, less the offset */
} DateMemo;

static const int MONTH_DAYS[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* A ``YYYY-MM-DDTHH:MM:SS+HH:MM`` cell as epoch seconds; 0 when it is not one. */
static int parse_time(const uint8_t *p, Py_ssize_t len, DateMemo *memo, int64_t *out) {
    static const int digit_at[18] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24};
    if (len != 25) return 0;
    for (int i = 0; i < 18; i++) {
        uint8_t c = p[digit_at[i]];
        if (c < '0' || c > '9') return 0;
    }
    if (p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' ||
        p[22] != ':' || (p[19] != '+' && p[19] != '-'))
        return 0;
    int hour = two(p + 11), minute = two(p + 14), second = two(p + 17);
    if (hour > 23 || minute > 59 || second > 59) return 0;
    uint64_t date, rest = 0;
    uint16_t day2;
    uint32_t off4;
    uint16_t off2;
    memcpy(&date, p, 8);
    memcpy(&day2, p + 8, 2);
    memcpy(&off4, p + 19, 4);
    memcpy(&off2, p + 23, 2);
    rest = (uint64_t)day2 | ((uint64_t)off4 << 16) | ((uint64_t)off2 << 48);
    if (!memo->valid || date != memo->date || rest != memo->rest) {
        int year = two(p) * 100 + two(p + 2), month = two(p + 5), day = two(p + 8);
        int off_h = two(p + 20), off_m = two(p + 23);
        if (year < MIN_YEAR || year > MAX_YEAR || month < 1 || month > 12) return 0;
        int leap = (year % 4 == 0) && (year % 100 != 0 || year % 400 == 0);
        int last = MONTH_DAYS[month] - (month == 2 && !leap);
        if (day < 1 || day > last || off_h > 23 || off_m > 59) return 0;
        int64_t offset = (int64_t)(off_h * 3600 + off_m * 60) * (p[19] == '+' ? 1 : -1);
        memo->base = days_from_civil(year, month, day) * 86400 - offset;
        memo->date = date;
        memo->rest = rest;
        memo->valid = 1;
    }
    *out = memo->base + hour * 3600 + minute * 60 + second;
    return 1;
}

static PyObject *names_list(const Names *t) {
    PyObject *out = PyList_New(t->count);
    if (out == NULL) return NULL;
    for (int k = 0; k < t->count; k++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)t->name[k], t->len[k]);
        if (b == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SetItem(out, k, b); /* steals the reference */
    }
    return out;
}

/* 0: a byte of a cell, 1: a comma or the newline, 2: a byte no plain row has (control bytes,
 * the quote, DEL and everything above ASCII) */
static uint8_t BYTE_CLASS[256];

static void init_classes(void) {
    for (int b = 0; b < 256; b++) BYTE_CLASS[b] = (b < 32 || b >= 127 || b == '"') ? 2 : 0;
    BYTE_CLASS[','] = 1;
    BYTE_CLASS['\n'] = 1;
}

/* The scan proper, without the GIL: the number of rows, or -1 when a row is not plain. */
static Py_ssize_t scan_rows(const uint8_t *text, Py_ssize_t size, Py_ssize_t width,
                            const uint8_t *kind, const uint8_t *slot_of, const double *low,
                            const double *high, const uint8_t *blank_ok, Py_ssize_t cap,
                            int64_t *starts, int64_t *ends, int64_t *times, int32_t *sym,
                            int32_t *cur, double *nums, Names *symbols, Names *currencies) {
    DateMemo memo = {0, 0, 0, 0};
    Py_ssize_t pos = 0, row = 0;
    while (pos < size) {
        if (row >= cap) return -1;
        starts[row] = pos;
        Py_ssize_t col = 0, cell = pos;
        for (;;) {
            Py_ssize_t q = cell;
            uint8_t b = 0;
            while (q < size) {
                b = text[q];
                uint8_t k = BYTE_CLASS[b];
                if (k == 0) {
                    q++;
                    continue;
                }
                if (k == 2) return -1;
                break; /* a comma or the newline */
            }
            if (q >= size || col >= width) return -1; /* no newline, or too many cells */
            const uint8_t *p = text + cell;
            Py_ssize_t len = q - cell;
            switch (kind[col]) {
            case K_TIME:
                if (!parse_time(p, len, &memo, &times[row])) return -1;
                break;
            case K_SYMBOL: {
                int32_t k = name_code(symbols, p, len);
                if (k < 0) return -1;
                sym[row] = k;
                break;
            }
            case K_CURRENCY: {
                int32_t k = name_code(currencies, p, len);
                if (k < 0) return -1;
                cur[row] = k;
                break;
            }
            case K_NUMBER: {
                int s = slot_of[col];
                double v = 0.0;
                int got = parse_number(p, len, &v);
                if (got == 0) return -1;
                if (got == 2) {
                    if (!blank_ok[s]) return -1;
                    v = NAN;
                } else if (!(v > low[s] && v < high[s])) {
                    return -1;
                }
                nums[(Py_ssize_t)s * cap + row] = v;
                break;
            }
            case K_EMPTY:
                if (len != 0) return -1;
                break;
            default:
                break;
            }
            if (b == ',') {
                col++;
                cell = q + 1;
                continue;
            }
            if (col != width - 1) return -1; /* too few cells */
            ends[row] = q;
            pos = q + 1;
            row++;
            break;
        }
    }
    return row;
}

static int check(Py_buffer *b, Py_ssize_t at_least, const char *what) {
    if (b->len < at_least) {
        PyErr_Format(PyExc_ValueError, "%s: buffer too small", what);
        return 0;
    }
    return 1;
}

/* scan(text, size, width, kinds, slots, lows, highs, blank_ok, cap,
 *      starts, ends, times, symbols, currencies, numbers)
 * -> (rows, symbol names, currency names) or None. */
static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer text, kinds, slots, lows, highs, blank, starts, ends, times, sym, cur, nums;
    Py_ssize_t size, width, cap;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*nw*w*w*w*w*w*", &text, &size, &width, &kinds,
                          &slots, &lows, &highs, &blank, &cap, &starts, &ends, &times, &sym,
                          &cur, &nums))
        return NULL;
    PyObject *result = NULL;
    Names *symbols = NULL, *currencies = NULL;
    Py_ssize_t n_slots = lows.len / (Py_ssize_t)sizeof(double);
    if (!check(&text, size, "text") || !check(&kinds, width, "kinds") ||
        !check(&slots, width, "slots") || !check(&highs, lows.len, "highs") ||
        !check(&blank, n_slots, "blank_ok") || !check(&starts, cap * 8, "starts") ||
        !check(&ends, cap * 8, "ends") || !check(&times, cap * 8, "times") ||
        !check(&sym, cap * 4, "symbols") || !check(&cur, cap * 4, "currencies") ||
        !check(&nums, n_slots * cap * 8, "numbers"))
        goto done;
    for (Py_ssize_t c = 0; c < width; c++) {
        if (((const uint8_t *)kinds.buf)[c] == K_NUMBER &&
            ((const uint8_t *)slots.buf)[c] >= n_slots) {
            PyErr_SetString(PyExc_ValueError, "a number column without its slot");
            goto done;
        }
    }
    symbols = calloc(1, sizeof(Names));
    currencies = calloc(1, sizeof(Names));
    if (symbols == NULL || currencies == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    symbols->last = currencies->last = -1;
    Py_ssize_t rows;
    Py_BEGIN_ALLOW_THREADS
    rows = width < 1 || size < 1 ? -1
           : scan_rows(text.buf, size, width, kinds.buf, slots.buf, lows.buf, highs.buf,
                       blank.buf, cap, starts.buf, ends.buf, times.buf, sym.buf, cur.buf,
                       nums.buf, symbols, currencies);
    Py_END_ALLOW_THREADS
    if (rows < 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    PyObject *s = names_list(symbols);
    PyObject *c = s == NULL ? NULL : names_list(currencies);
    if (s != NULL && c != NULL) result = Py_BuildValue("(nOO)", rows, s, c);
    Py_XDECREF(s);
    Py_XDECREF(c);
done:
    free(symbols);
    free(currencies);
    PyBuffer_Release(&text);
    PyBuffer_Release(&kinds);
    PyBuffer_Release(&slots);
    PyBuffer_Release(&lows);
    PyBuffer_Release(&highs);
    PyBuffer_Release(&blank);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&times);
    PyBuffer_Release(&sym);
    PyBuffer_Release(&cur);
    PyBuffer_Release(&nums);
    return result;
}

/* lines(text, size) -> the number of newlines in the first size bytes */
static PyObject *lines(PyObject *self, PyObject *args) {
    Py_buffer text;
    Py_ssize_t size, n = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*n", &text, &size)) return NULL;
    if (size < 0 || size > text.len) {
        PyBuffer_Release(&text);
        PyErr_SetString(PyExc_ValueError, "size outside the text");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    const uint8_t *p = text.buf, *end = p + size;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&text);
    return PyLong_FromSsize_t(n);
}

static PyMethodDef METHODS[] = {
    {"lines", lines, METH_VARARGS, "Count the newlines in the first size bytes."},
    {"scan", scan, METH_VARARGS, "Scan a chunk of plainly written tape rows into arrays."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "_tapescan", "The fast path's tape scanner in C.", -1, METHODS,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tapescan(void) {
    init_classes();
    return PyModule_Create(&MODULE);
}
