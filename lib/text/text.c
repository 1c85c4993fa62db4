/*
 * Text corpora, vocabularies, the char-rnn datasets and generation
 * (include/sgdlab/text.h). A corpus is decoded in two passes over its bytes:
 * the first validates and marks every symbol that occurs (a bitmap of the
 * 0x110000 code points, or of the 256 bytes), the second maps each symbol
 * to its id (its rank among the symbols, by binary search). Files are read
 * whole, bounded by their size and by max_bytes before anything is
 * allocated. SPDX-License-Identifier: MIT
 */
#include "sgdlab/text.h"

#include "core/abi.h"
#include "data/data_internal.h"
#include "model/model_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PATHS 4096
#define MAX_FILES 65536

struct sgd_vocab {
    sgd_allocator alloc;
    int32_t unit;
    bool owned;       /* by a corpus: sgd_vocab_free() leaves it alone */
    int64_t n;
    uint32_t *symbols; /* strictly increasing */
};

struct sgd_text {
    sgd_allocator alloc;
    sgd_vocab vocab;
    int32_t *tokens;
    int64_t n;
    int64_t bytes;
    int64_t files;
};

/* ---------------------------------------------------------------- options */

void sgd_text_options_init(sgd_text_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->unit = SGD_TEXT_UTF8;
    o->max_bytes = SGD_TEXT_MAX_BYTES;
}

void sgd_text_split_options_init(sgd_text_split_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->seq_len = 100;
    o->streams = 32;
    o->val_fraction = 0.05;
    o->val_streams = 0;
}

void sgd_generate_options_init(sgd_generate_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->prime = NULL;
    o->length = 200;
    o->temperature = 1.0;
    o->seed = 0;
}

static sgd_status text_options(sgd_text_options *o, const sgd_text_options *in, const char *fn)
{
    sgd_text_options_init(o);
    sgd_status st = sgd__options_copy(o, sizeof *o, in, SGD__FIRST(sgd_text_options), fn, "opts");
    if (st != SGD_OK)
        return st;
    if (o->unit != SGD_TEXT_UTF8 && o->unit != SGD_TEXT_BYTES)
        return sgd__err(SGD_EINVAL, "%s: unit=%d: must be 1 (UTF-8 characters) or 2 (bytes)", fn, (int)o->unit);
    if (o->max_bytes < 1 || o->max_bytes > SGD_TEXT_MAX_BYTES)
        return sgd__err(SGD_EINVAL, "%s: max_bytes=%lld: must be in [1, 2^31 - 1]", fn, (long long)o->max_bytes);
    return SGD_OK;
}

/* ---------------------------------------------------------------- UTF-8 */

/*
 * Decodes one code point at p[0..n): its length in *used, or 0 for an
 * invalid sequence (truncated, a stray continuation byte, an overlong form,
 * a surrogate, above 0x10FFFF).
 */
static uint32_t utf8_next(const unsigned char *p, size_t n, size_t *used)
{
    *used = 0;
    unsigned c = p[0];
    if (c < 0x80) {
        *used = 1;
        return c;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *used = len;
    return cp;
}

/* Writes the UTF-8 form of cp into out (4 bytes of room); returns its length. */
static size_t utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static size_t utf8_len(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* ---------------------------------------------------------------- vocabularies */

/* The id of symbol s, or -1. */
static int64_t vocab_find(const sgd_vocab *v, uint32_t s)
{
    int64_t lo = 0, hi = v->n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v->symbols[mid] == s)
            return mid;
        if (v->symbols[mid] < s)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static void describe_symbol(char *buf, size_t cap, int32_t unit, uint32_t s)
{
    if (unit == SGD_TEXT_BYTES)
        snprintf(buf, cap, "byte 0x%02x", (unsigned)s);
    else if (s >= 0x20 && s < 0x7F && s != '\'')
        snprintf(buf, cap, "'%c' (U+%04X)", (int)s, (unsigned)s);
    else
        snprintf(buf, cap, "U+%04X", (unsigned)s);
}

sgd_status sgd_vocab_new(sgd_vocab **out, int32_t unit, const uint32_t *symbols, int64_t n,
                         const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_vocab_new";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (unit != SGD_TEXT_UTF8 && unit != SGD_TEXT_BYTES)
        return sgd__err(SGD_EINVAL, "%s: unit=%d: must be 1 (UTF-8 characters) or 2 (bytes)", fn, (int)unit);
    int64_t cap = unit == SGD_TEXT_BYTES ? 256 : SGD_VOCAB_MAX_SIZE;
    if (n < 1 || n > cap)
        return sgd__err(SGD_EINVAL, "%s: n=%lld: must be in [1, %lld]", fn, (long long)n, (long long)cap);
    if (symbols == NULL)
        return sgd__err(SGD_EINVAL, "%s: symbols is NULL", fn);
    for (int64_t i = 0; i < n; i++) {
        uint32_t s = symbols[i];
        bool bad = unit == SGD_TEXT_BYTES ? s > 255 : (s > 0x10FFFF || (s >= 0xD800 && s <= 0xDFFF));
        if (bad || (i > 0 && s <= symbols[i - 1]))
            return sgd__err(SGD_EINVAL, "%s: symbols[%lld]=0x%x: %s", fn, (long long)i, (unsigned)s,
                            bad ? (unit == SGD_TEXT_BYTES ? "not a byte" : "not a Unicode scalar value")
                                : "symbols must be in strictly increasing order");
    }
    sgd_allocator a;
    sgd_status st = sgd__allocator_init(&a, alloc, fn);
    if (st != SGD_OK)
        return st;
    sgd_vocab *v = sgd__malloc(&a, sizeof *v);
    uint32_t *sym = v != NULL ? sgd__malloc(&a, (size_t)n * sizeof *sym) : NULL;
    if (sym == NULL) {
        sgd__free(&a, v);
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    }
    memcpy(sym, symbols, (size_t)n * sizeof *sym);
    memset(v, 0, sizeof *v);
    v->alloc = a;
    v->unit = unit;
    v->n = n;
    v->symbols = sym;
    *out = v;
    return SGD_OK;
}

sgd_status sgd_vocab_copy(sgd_vocab **out, const sgd_vocab *v, const sgd_allocator *alloc)
{
    if (out != NULL)
        *out = NULL;
    if (v == NULL)
        return sgd__err(SGD_EINVAL, "sgd_vocab_copy: vocabulary is NULL");
    sgd_status st = sgd_vocab_new(out, v->unit, v->symbols, v->n, alloc);
    if (st != SGD_OK)
        sgd__err_prefix("sgd_vocab_copy");
    return st;
}

void sgd_vocab_free(sgd_vocab *v)
{
    if (v == NULL || v->owned)
        return;
    sgd_allocator a = v->alloc;
    sgd__free(&a, v->symbols);
    sgd__free(&a, v);
}

int64_t sgd_vocab_size(const sgd_vocab *v)
{
    return v ? v->n : 0;
}

int32_t sgd_vocab_unit(const sgd_vocab *v)
{
    return v ? v->unit : 0;
}

const uint32_t *sgd_vocab_symbols(const sgd_vocab *v)
{
    return v ? v->symbols : NULL;
}

int32_t sgd_vocab_equal(const sgd_vocab *a, const sgd_vocab *b)
{
    if (a == NULL || b == NULL || a->unit != b->unit || a->n != b->n)
        return 0;
    return memcmp(a->symbols, b->symbols, (size_t)a->n * sizeof *a->symbols) == 0;
}

sgd_status sgd_vocab_encode(const sgd_vocab *v, const char *text, size_t len, int32_t *ids, size_t cap, size_t *n)
{
    static const char fn[] = "sgd_vocab_encode";
    if (n != NULL)
        *n = 0;
    if (v == NULL || n == NULL || (text == NULL && len > 0))
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, v == NULL ? "vocabulary" : n == NULL ? "n" : "text");
    const unsigned char *p = (const unsigned char *)text;
    size_t count = 0;
    for (size_t at = 0; at < len;) {
        uint32_t s;
        size_t used = 1;
        if (v->unit == SGD_TEXT_BYTES) {
            s = p[at];
        } else {
            s = utf8_next(p + at, len - at, &used);
            if (used == 0)
                return sgd__err(SGD_EFORMAT, "%s: byte %zu (0x%02x): not valid UTF-8", fn, at, (unsigned)p[at]);
        }
        int64_t id = vocab_find(v, s);
        if (id < 0) {
            char d[48];
            describe_symbol(d, sizeof d, v->unit, s);
            return sgd__err(SGD_ENOTFOUND, "%s: %s at byte %zu is not in the vocabulary (%lld symbols)", fn, d, at,
                            (long long)v->n);
        }
        if (ids != NULL && count < cap)
            ids[count] = (int32_t)id;
        count++;
        at += used;
    }
    *n = count;
    if (ids != NULL && count > cap)
        return sgd__err(SGD_ERANGE, "%s: cap=%zu: the text has %zu symbols", fn, cap, count);
    return SGD_OK;
}

sgd_status sgd_vocab_decode(const sgd_vocab *v, const int32_t *ids, size_t n, char *buf, size_t cap, size_t *len)
{
    static const char fn[] = "sgd_vocab_decode";
    if (len != NULL)
        *len = 0;
    if (v == NULL || len == NULL || (ids == NULL && n > 0))
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, v == NULL ? "vocabulary" : len == NULL ? "len" : "ids");
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n)
            return sgd__err(SGD_EINVAL, "%s: ids[%zu]=%d: must be in [0, %lld)", fn, i, (int)ids[i], (long long)v->n);
        need += v->unit == SGD_TEXT_BYTES ? 1 : utf8_len(v->symbols[ids[i]]);
    }
    *len = need;
    if (buf == NULL)
        return SGD_OK;
    if (cap < need + 1)
        return sgd__err(SGD_ERANGE, "%s: cap=%zu: the text needs %zu bytes and a NUL", fn, cap, need);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = v->symbols[ids[i]];
        if (v->unit == SGD_TEXT_BYTES)
            buf[at++] = (char)(unsigned char)s;
        else
            at += utf8_put(s, buf + at);
    }
    buf[at] = '\0';
    return SGD_OK;
}

/* ---------------------------------------------------------------- corpora */

/* Where each file's bytes are in the concatenated input, for messages. */
typedef struct segment {
    const char *name; /* NULL: memory */
    size_t start, len;
} segment;

static sgd_status decode_error(const segment *seg, size_t at, unsigned byte, const char *fn)
{
    if (seg->name == NULL)
        return sgd__err(SGD_EFORMAT, "%s: byte %zu (0x%02x): not valid UTF-8 (read the text as bytes: unit=%d)", fn,
                        at, byte, SGD_TEXT_BYTES);
    return sgd__err(SGD_EFORMAT, "%s: %s: byte %zu (0x%02x): not valid UTF-8 (read the text as bytes: unit=%d)", fn,
                    seg->name, at, byte, SGD_TEXT_BYTES);
}

/* Builds the corpus of `data` (the segments one after the other). */
static sgd_status build(sgd_text **out, const unsigned char *data, const segment *segs, size_t nseg, int32_t unit,
                        const sgd_allocator *a, const char *fn)
{
    size_t mark_bits = unit == SGD_TEXT_BYTES ? 256 : (size_t)SGD_VOCAB_MAX_SIZE;
    uint64_t *mark = sgd__calloc(a, (mark_bits + 63) / 64, sizeof *mark);
    if (mark == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    /* Pass 1: validate and mark. */
    size_t count = 0;
    for (size_t k = 0; k < nseg; k++) {
        const unsigned char *p = data + segs[k].start;
        size_t n = segs[k].len;
        for (size_t at = 0; at < n;) {
            uint32_t s;
            size_t used = 1;
            if (unit == SGD_TEXT_BYTES) {
                s = p[at];
            } else {
                s = utf8_next(p + at, n - at, &used);
                if (used == 0) {
                    sgd__free(a, mark);
                    return decode_error(&segs[k], at, p[at], fn);
                }
            }
            mark[s >> 6] |= (uint64_t)1 << (s & 63);
            count++;
            at += used;
        }
    }
    if (count == 0) {
        sgd__free(a, mark);
        return sgd__err(SGD_EFORMAT, "%s: the text is empty", fn);
    }
    int64_t nsym = 0;
    for (size_t w = 0; w < (mark_bits + 63) / 64; w++)
        nsym += __builtin_popcountll(mark[w]);
    sgd_text *t = sgd__malloc(a, sizeof *t);
    uint32_t *sym = t != NULL ? sgd__malloc(a, (size_t)nsym * sizeof *sym) : NULL;
    int32_t *tok = sym != NULL ? sgd__alloc_aligned(a, count, sizeof *tok) : NULL;
    if (tok == NULL) {
        sgd__free(a, sym);
        sgd__free(a, t);
        sgd__free(a, mark);
        return sgd__err(SGD_ENOMEM, "%s: out of memory for %zu tokens", fn, count);
    }
    int64_t j = 0;
    for (size_t s = 0; s < mark_bits; s++)
        if (mark[s >> 6] & ((uint64_t)1 << (s & 63)))
            sym[j++] = (uint32_t)s;
    sgd__free(a, mark);
    memset(t, 0, sizeof *t);
    t->alloc = *a;
    t->vocab.alloc = *a;
    t->vocab.unit = unit;
    t->vocab.owned = true;
    t->vocab.n = nsym;
    t->vocab.symbols = sym;
    /* Pass 2: ids. */
    size_t i = 0;
    for (size_t k = 0; k < nseg; k++) {
        const unsigned char *p = data + segs[k].start;
        size_t n = segs[k].len;
        for (size_t at = 0; at < n;) {
            size_t used = 1;
            uint32_t s = unit == SGD_TEXT_BYTES ? p[at] : utf8_next(p + at, n - at, &used);
            tok[i++] = (int32_t)vocab_find(&t->vocab, s);
            at += used;
        }
        t->bytes += (int64_t)n;
    }
    t->tokens = tok;
    t->n = (int64_t)count;
    t->files = (int64_t)nseg;
    *out = t;
    return SGD_OK;
}

sgd_status sgd_text_from_memory(sgd_text **out, const void *data, size_t size, const sgd_text_options *opts,
                                const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_text_from_memory";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (data == NULL && size > 0)
        return sgd__err(SGD_EINVAL, "%s: data is NULL", fn);
    sgd_text_options o;
    sgd_status st = text_options(&o, opts, fn);
    if (st != SGD_OK)
        return st;
    if (size > (uint64_t)o.max_bytes)
        return sgd__err(SGD_EOVERFLOW, "%s: %zu bytes: more than max_bytes=%lld", fn, size, (long long)o.max_bytes);
    sgd_allocator a;
    if ((st = sgd__allocator_init(&a, alloc, fn)) != SGD_OK)
        return st;
    segment seg = {NULL, 0, size};
    return build(out, data, &seg, 1, o.unit, &a, fn);
}

/* ---------------------------------------------------------------- files */

typedef struct flist {
    char **names;
    size_t n, cap;
} flist;

static void flist_free(flist *l, const sgd_allocator *a)
{
    for (size_t i = 0; i < l->n; i++)
        sgd__free(a, l->names[i]);
    sgd__free(a, l->names);
    l->names = NULL;
    l->n = l->cap = 0;
}

static sgd_status flist_add(flist *l, const sgd_allocator *a, const char *dir, const char *name, const char *fn)
{
    if (l->n >= MAX_FILES)
        return sgd__err(SGD_EOVERFLOW, "%s: more than %d files", fn, MAX_FILES);
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **p = sgd__realloc(a, l->names, cap * sizeof *p);
        if (p == NULL)
            return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
        l->names = p;
        l->cap = cap;
    }
    size_t dl = dir ? strlen(dir) : 0, nl = strlen(name);
    char *s = sgd__malloc(a, dl + nl + 2);
    if (s == NULL)
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    if (dir != NULL) {
        memcpy(s, dir, dl);
        s[dl] = '/';
        memcpy(s + dl + 1, name, nl + 1);
    } else {
        memcpy(s, name, nl + 1);
    }
    l->names[l->n++] = s;
    return SGD_OK;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The text files of a directory: regular files, not links, not hidden, not *.dat; sorted. */
static sgd_status list_dir(flist *l, const sgd_allocator *a, const char *dir, const char *fn)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return sgd__err(SGD_EIO, "%s: %s: %s", fn, dir, strerror(errno));
    size_t first = l->n;
    sgd_status st = SGD_OK;
    struct dirent *e;
    while (st == SGD_OK && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (name[0] == '.' || (len >= 4 && strcmp(name + len - 4, ".dat") == 0))
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
            continue;
        struct stat sb;
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        st = flist_add(l, a, dir, name, fn);
    }
    closedir(d);
    if (st != SGD_OK)
        return st;
    if (l->n == first)
        return sgd__err(SGD_EIO, "%s: %s: no text files in the directory", fn, dir);
    qsort(l->names + first, l->n - first, sizeof *l->names, cmp_names);
    return SGD_OK;
}

/* Reads the regular file `path` whole onto buf at *at (grown); the total stays within max. */
static sgd_status read_file(const char *path, unsigned char **buf, size_t *cap, size_t *at, int64_t max,
                            const sgd_allocator *a, const char *fn)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sgd__err(SGD_EIO, "%s: %s: %s", fn, path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sgd__err(SGD_EIO, "%s: %s: not a regular file", fn, path);
    }
    if ((uint64_t)sb.st_size > (uint64_t)max - *at) {
        close(fd);
        return sgd__err(SGD_EOVERFLOW, "%s: %s: %lld bytes: the text would exceed max_bytes=%lld", fn, path,
                        (long long)sb.st_size, (long long)max);
    }
    size_t size = (size_t)sb.st_size;
    if (*at + size + 1 > *cap) {
        size_t ncap = *cap ? *cap : 1 << 16;
        while (ncap < *at + size + 1)
            ncap = ncap > SIZE_MAX / 2 ? *at + size + 1 : 2 * ncap;
        unsigned char *p = sgd__realloc(a, *buf, ncap);
        if (p == NULL) {
            close(fd);
            return sgd__err(SGD_ENOMEM, "%s: %s: out of memory for %zu bytes", fn, path, ncap);
        }
        *buf = p;
        *cap = ncap;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, *buf + *at + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            return sgd__err(SGD_EIO, "%s: %s: %s", fn, path, r < 0 ? strerror(errno) : "shorter than its size");
        }
        got += (size_t)r;
    }
    close(fd);
    *at += size;
    return SGD_OK;
}

sgd_status sgd_text_load(sgd_text **out, const char *const *paths, size_t n_paths, const sgd_text_options *opts,
                         const sgd_allocator *alloc)
{
    static const char fn[] = "sgd_text_load";
    if (out == NULL)
        return sgd__err(SGD_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (paths == NULL)
        return sgd__err(SGD_EINVAL, "%s: paths is NULL", fn);
    if (n_paths < 1 || n_paths > MAX_PATHS)
        return sgd__err(SGD_EINVAL, "%s: n_paths=%zu: must be in [1, %d]", fn, n_paths, MAX_PATHS);
    for (size_t i = 0; i < n_paths; i++)
        if (paths[i] == NULL || paths[i][0] == '\0')
            return sgd__err(SGD_EINVAL, "%s: paths[%zu] is %s", fn, i, paths[i] == NULL ? "NULL" : "empty");
    sgd_text_options o;
    sgd_status st = text_options(&o, opts, fn);
    if (st != SGD_OK)
        return st;
    sgd_allocator a;
    if ((st = sgd__allocator_init(&a, alloc, fn)) != SGD_OK)
        return st;
    flist files = {NULL, 0, 0};
    for (size_t i = 0; i < n_paths && st == SGD_OK; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0)
            st = sgd__err(SGD_EIO, "%s: %s: %s", fn, paths[i], strerror(errno));
        else if (S_ISDIR(sb.st_mode))
            st = list_dir(&files, &a, paths[i], fn);
        else
            st = flist_add(&files, &a, NULL, paths[i], fn);
    }
    unsigned char *buf = NULL;
    size_t cap = 0, at = 0;
    segment *segs = NULL;
    if (st == SGD_OK && (segs = sgd__calloc(&a, files.n, sizeof *segs)) == NULL)
        st = sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    for (size_t i = 0; i < files.n && st == SGD_OK; i++) {
        segs[i].name = files.names[i];
        segs[i].start = at;
        st = read_file(files.names[i], &buf, &cap, &at, o.max_bytes, &a, fn);
        segs[i].len = at - segs[i].start;
    }
    if (st == SGD_OK)
        st = build(out, buf != NULL ? buf : (const unsigned char *)"", segs, files.n, o.unit, &a, fn);
    sgd__free(&a, segs);
    sgd__free(&a, buf);
    flist_free(&files, &a);
    return st;
}

void sgd_text_free(sgd_text *t)
{
    if (t == NULL)
        return;
    sgd_allocator a = t->alloc;
    sgd__free(&a, t->vocab.symbols);
    sgd__free_aligned(&a, t->tokens);
    sgd__free(&a, t);
}

int64_t sgd_text_length(const sgd_text *t)
{
    return t ? t->n : 0;
}

const int32_t *sgd_text_tokens(const sgd_text *t)
{
    return t ? t->tokens : NULL;
}

const sgd_vocab *sgd_text_vocab(const sgd_text *t)
{
    return t ? &t->vocab : NULL;
}

int64_t sgd_text_bytes(const sgd_text *t)
{
    return t ? t->bytes : 0;
}

int64_t sgd_text_num_files(const sgd_text *t)
{
    return t ? t->files : 0;
}

/* ---------------------------------------------------------------- datasets */

/* The dataset of B streams of sequences of T over tokens seg[0..len); rows = K * B. */
static sgd_status make_streams(sgd_dataset **out, const int32_t *seg, int64_t len, int64_t T, int64_t B,
                               int32_t classes, const sgd_allocator *a, const char *what, const char *fn)
{
    int64_t per = (len - 1) / B, K = per / T;
    if (len < 2 || K < 1)
        return sgd__err(SGD_EINVAL,
                        "%s: the %s text has %lld tokens: %lld streams of sequences of %lld need at least %lld", fn,
                        what, (long long)len, (long long)B, (long long)T, (long long)(B * T + 1));
    size_t rows = (size_t)(K * B), cells;
    if (!sgd__mul_size(rows, (size_t)T, &cells) || cells > SIZE_MAX / sizeof(float))
        return sgd__err(SGD_EOVERFLOW, "%s: the %s dataset overflows", fn, what);
    sgd_dataset *d = sgd__malloc(a, sizeof *d);
    sgd__store *s = d != NULL ? sgd__store_new(a, NULL) : NULL;
    float *x = s != NULL ? sgd__alloc_aligned(a, cells, sizeof *x) : NULL;
    int32_t *lab = x != NULL ? sgd__alloc_aligned(a, cells, sizeof *lab) : NULL;
    if (lab == NULL) {
        sgd__free_aligned(a, x);
        sgd__store_unref(s);
        sgd__free(a, d);
        return sgd__err(SGD_ENOMEM, "%s: out of memory for the %s dataset (%zu tokens)", fn, what, cells);
    }
    s->blocks[0] = x;
    s->blocks[1] = lab;
    for (int64_t k = 0; k < K; k++)
        for (int64_t b = 0; b < B; b++) {
            const int32_t *src = seg + b * per + k * T;
            size_t row = ((size_t)k * (size_t)B + (size_t)b) * (size_t)T;
            for (int64_t j = 0; j < T; j++) {
                x[row + (size_t)j] = (float)src[j];
                lab[row + (size_t)j] = src[j + 1];
            }
        }
    memset(d, 0, sizeof *d);
    d->alloc = *a;
    d->x = x;
    d->labels = lab;
    d->n = (int64_t)rows;
    d->dim = T;
    d->ldim = T;
    d->streams = B;
    d->n_classes = classes;
    d->store = s;
    *out = d;
    return SGD_OK;
}

sgd_status sgd_text_datasets(sgd_dataset **train, sgd_dataset **val, const sgd_text *t,
                             const sgd_text_split_options *opts)
{
    static const char fn[] = "sgd_text_datasets";
    if (train != NULL)
        *train = NULL;
    if (val != NULL)
        *val = NULL;
    if (train == NULL || t == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, train == NULL ? "train" : "text");
    sgd_text_split_options o;
    sgd_text_split_options_init(&o);
    sgd_status st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_text_split_options), fn, "opts");
    if (st != SGD_OK)
        return st;
    if (o.seq_len < 1 || o.seq_len > SGD_MODEL_MAX_UNITS)
        return sgd__err(SGD_EINVAL, "%s: seq_len=%lld: must be in [1, 2^24]", fn, (long long)o.seq_len);
    if (o.streams < 1 || o.streams > SGD_MODEL_MAX_BATCH)
        return sgd__err(SGD_EINVAL, "%s: streams=%lld: must be in [1, 2^20]", fn, (long long)o.streams);
    if (o.val_streams < 0 || o.val_streams > SGD_MODEL_MAX_BATCH)
        return sgd__err(SGD_EINVAL, "%s: val_streams=%lld: must be in [0, 2^20]", fn, (long long)o.val_streams);
    if (!(o.val_fraction >= 0.0 && o.val_fraction <= 0.5))
        return sgd__err(SGD_EINVAL, "%s: val_fraction=%g: must be in [0, 0.5]", fn, o.val_fraction);
    if (o.val_fraction > 0 && val == NULL)
        return sgd__err(SGD_EINVAL, "%s: val is NULL (with val_fraction=%g > 0)", fn, o.val_fraction);
    int64_t n_val = o.val_fraction > 0 ? (int64_t)floor((double)t->n * o.val_fraction) : 0;
    int64_t n_train = t->n - n_val;
    int32_t classes = (int32_t)t->vocab.n;
    sgd_dataset *tr = NULL, *va = NULL;
    if ((st = make_streams(&tr, t->tokens, n_train, o.seq_len, o.streams, classes, &t->alloc, "training", fn)) !=
        SGD_OK)
        return st;
    if (o.val_fraction > 0) {
        int64_t B = o.val_streams > 0 ? o.val_streams : o.streams;
        if (o.val_streams == 0 && n_val >= 2 && (n_val - 1) / o.seq_len < B) /* fewer streams of a short part */
            B = (n_val - 1) / o.seq_len > 0 ? (n_val - 1) / o.seq_len : 1;
        if ((st = make_streams(&va, t->tokens + n_train, n_val, o.seq_len, B, classes, &t->alloc, "validation",
                               fn)) != SGD_OK) {
            sgd_dataset_free(tr);
            return st;
        }
    }
    *train = tr;
    if (val != NULL)
        *val = va;
    return SGD_OK;
}

/* ---------------------------------------------------------------- generation */

size_t sgd_text_generate_bound(const sgd_vocab *v, int64_t length)
{
    if (v == NULL || length < 0 || length > SGD_MODEL_MAX_UNITS)
        return 0;
    return (size_t)length * (v->unit == SGD_TEXT_BYTES ? 1 : 4) + 1;
}

/* The next symbol from logits z[0..V): softmax(z / temperature), or the largest at temperature 0. */
static int64_t sample(const float *z, int64_t V, double temperature, sgd__rng *r)
{
    int64_t arg = 0;
    for (int64_t j = 1; j < V; j++)
        if (z[j] > z[arg])
            arg = j;
    if (temperature == 0.0)
        return arg;
    double mx = z[arg], sum = 0;
    for (int64_t j = 0; j < V; j++)
        sum += exp(((double)z[j] - mx) / temperature);
    double u = sgd__rng_uniform(r) * sum, acc = 0;
    for (int64_t j = 0; j < V; j++) {
        acc += exp(((double)z[j] - mx) / temperature);
        if (u < acc)
            return j;
    }
    return arg; /* rounding: the mass ran out */
}

sgd_status sgd_text_generate(sgd_model *m, const sgd_vocab *v, const sgd_generate_options *opts, char *out,
                             size_t cap, size_t *len)
{
    static const char fn[] = "sgd_text_generate";
    if (len != NULL)
        *len = 0;
    if (m == NULL || v == NULL || out == NULL)
        return sgd__err(SGD_EINVAL, "%s: %s is NULL", fn, m == NULL ? "model" : v == NULL ? "vocabulary" : "out");
    if (cap == 0)
        return sgd__err(SGD_ERANGE, "%s: cap=0: no room for the text", fn);
    out[0] = '\0';
    sgd_generate_options o;
    sgd_generate_options_init(&o);
    sgd_status st = sgd__options_copy(&o, sizeof o, opts, SGD__FIRST(sgd_generate_options), fn, "opts");
    if (st != SGD_OK)
        return st;
    if (o.length < 0 || o.length > SGD_MODEL_MAX_UNITS)
        return sgd__err(SGD_EINVAL, "%s: length=%lld: must be in [0, 2^24]", fn, (long long)o.length);
    if (!(o.temperature >= 0.0 && o.temperature <= 100.0))
        return sgd__err(SGD_EINVAL, "%s: temperature=%g: must be in [0, 100]", fn, o.temperature);
    if (!m->built)
        return sgd__err(SGD_ESTATE, "%s: the model is not built yet (call sgd_model_build)", fn);
    int32_t rank;
    int64_t ishape[3], oshape[3];
    sgd_model_input_shape(m, &rank, ishape);
    int32_t orank;
    sgd_model_output_shape(m, &orank, oshape);
    if (rank != 1 || orank != 2 || oshape[0] != ishape[0])
        return sgd__err(SGD_EINVAL,
                        "%s: the model (%s) is not a language model: it must take a sequence of token ids [T] and "
                        "give logits [T, vocabulary] (as tokens-embedding(64)-lstm(256)-dense(vocab))",
                        fn, sgd_model_spec(m));
    if (oshape[1] != v->n)
        return sgd__err(SGD_EINVAL, "%s: the model has %lld outputs per position, the vocabulary %lld symbols", fn,
                        (long long)oshape[1], (long long)v->n);
    size_t nprime = 0;
    size_t plen = o.prime != NULL ? strlen(o.prime) : 0;
    if ((st = sgd_vocab_encode(v, o.prime, plen, NULL, 0, &nprime)) != SGD_OK) {
        sgd__err_prefix("%s: prime", fn);
        return st;
    }
    /* Keep what is changed: the mode, the length, the carried state. */
    size_t sbytes = sgd_model_state_size(m);
    int32_t *ids = sgd__malloc(&m->alloc, (nprime > 0 ? nprime : 1) * sizeof *ids);
    void *saved = ids != NULL ? sgd__malloc(&m->alloc, sbytes > 0 ? sbytes : 1) : NULL;
    if (saved == NULL) {
        sgd__free(&m->alloc, ids);
        return sgd__err(SGD_ENOMEM, "%s: out of memory", fn);
    }
    sgd_vocab_encode(v, o.prime, plen, ids, nprime, &nprime);
    sgd_model_get_state(m, saved, sbytes);
    int32_t training = sgd_model_is_training(m);
    int64_t T0 = ishape[0];
    if ((st = sgd_model_set_seq_len(m, 1)) != SGD_OK) {
        sgd__free(&m->alloc, saved);
        sgd__free(&m->alloc, ids);
        return st;
    }
    sgd_model_set_training(m, 0);
    sgd_model_reset_state(m);
    sgd__rng rng;
    sgd__rng_seed(&rng, o.seed);
    const float *logits = NULL;
    float x;
    if (nprime == 0) {
        int64_t nl = v->unit == SGD_TEXT_BYTES || v->unit == SGD_TEXT_UTF8 ? vocab_find(v, '\n') : -1;
        x = (float)(nl >= 0 ? nl : 0);
        st = sgd_model_forward(m, &x, 1, &logits);
    }
    for (size_t i = 0; i < nprime && st == SGD_OK; i++) {
        x = (float)ids[i];
        st = sgd_model_forward(m, &x, 1, &logits);
    }
    size_t at = 0;
    for (int64_t k = 0; k < o.length && st == SGD_OK; k++) {
        int64_t id = sample(logits, v->n, o.temperature, &rng);
        uint32_t s = v->symbols[id];
        size_t need = v->unit == SGD_TEXT_BYTES ? 1 : utf8_len(s);
        if (at + need + 1 > cap) {
            st = sgd__err(SGD_ERANGE, "%s: cap=%zu: the text does not fit (sgd_text_generate_bound() says how much)", fn,
                          cap);
            break;
        }
        if (v->unit == SGD_TEXT_BYTES)
            out[at++] = (char)(unsigned char)s;
        else
            at += utf8_put(s, out + at);
        if (k + 1 < o.length) {
            x = (float)id;
            st = sgd_model_forward(m, &x, 1, &logits);
        }
    }
    out[at] = '\0';
    /* Put the model back: its buffers of length T0 are still there, so this does not allocate. */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", st != SGD_OK ? sgd_error_last() : "");
    sgd_status back = sgd_model_set_seq_len(m, T0);
    if (back == SGD_OK)
        sgd_model_set_state(m, saved, sbytes);
    sgd_model_set_training(m, training);
    sgd__free(&m->alloc, saved);
    sgd__free(&m->alloc, ids);
    if (st != SGD_OK)
        return sgd__err(st, "%s", msg);
    if (back != SGD_OK)
        return back;
    if (len != NULL)
        *len = at;
    return SGD_OK;
}
