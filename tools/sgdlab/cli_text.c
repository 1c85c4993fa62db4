/*
 * Text data for the sgdlab tool: --data text[:PATH,...] (the fortunes
 * corpus by default), the model options of a text model, samples of
 * generated text. SPDX-License-Identifier: MIT
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool cli_is_text(const char *spec)
{
    return spec != NULL && (strcmp(spec, "text") == 0 || strncmp(spec, "text:", 5) == 0);
}

bool cli_load_text(const char *cmd, const char *spec, int64_t seq_len, int64_t streams, double val_fraction,
                   int32_t unit, cli_data *d)
{
    memset(d, 0, sizeof *d);
    double t0 = cli_now();
    const char *list = spec[4] == ':' ? spec + 5 : "";
    char buf[8192];
    if (strlen(list) >= sizeof buf) {
        fprintf(stderr, "sgdlab %s: --data: value too long\n", cmd);
        return false;
    }
    snprintf(buf, sizeof buf, "%s", list);
    const char *paths[256];
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (n == sizeof paths / sizeof *paths) {
            fprintf(stderr, "sgdlab %s: --data: more than %zu paths\n", cmd, sizeof paths / sizeof *paths);
            return false;
        }
        paths[n++] = tok;
    }
    bool fortunes = n == 0;
    if (fortunes) {
        const char *env = getenv("SGDLAB_FORTUNES_DIR");
        paths[n++] = env != NULL && *env ? env : CLI_FORTUNES_DIR;
        struct stat st;
        if (stat(paths[0], &st) != 0) {
            fprintf(stderr,
                    "sgdlab %s: --data text: %s is missing: install the Debian package fortunes (apt-get install "
                    "fortunes), or give files with --data text:PATH[,PATH...]\n",
                    cmd, paths[0]);
            return false;
        }
    }
    sgd_text_options to;
    sgd_text_options_init(&to);
    to.unit = unit;
    if (sgd_text_load(&d->text, paths, n, &to, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --data %s: %s\n", cmd, spec, sgd_error_last());
        return false;
    }
    sgd_text_split_options so;
    sgd_text_split_options_init(&so);
    so.seq_len = seq_len;
    so.streams = streams;
    so.val_fraction = val_fraction;
    if (sgd_text_datasets(&d->train, val_fraction > 0 ? &d->val : NULL, d->text, &so) != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --data %s: %s\n", cmd, spec, sgd_error_last());
        cli_data_free(d);
        return false;
    }
    d->seq_len = seq_len;
    d->streams = streams;
    d->dim = seq_len;
    d->classes = sgd_vocab_size(sgd_text_vocab(d->text));
    d->val_name = "val";
    snprintf(d->name, sizeof d->name, "%s", fortunes ? "fortunes" : "text");
    char sum[128];
    if (fortunes)
        snprintf(d->desc, sizeof d->desc, "the fortunes corpus (%lld files in %s; %s)",
                 (long long)sgd_text_num_files(d->text), paths[0], cli_text_summary(d, sum, sizeof sum));
    else
        snprintf(d->desc, sizeof d->desc, "%lld text file%s (%s)", (long long)sgd_text_num_files(d->text),
                 sgd_text_num_files(d->text) == 1 ? "" : "s", cli_text_summary(d, sum, sizeof sum));
    d->load_seconds = cli_now() - t0;
    return true;
}

const char *cli_text_spec(const char *cmd, const cli_data *d, const char *model, char *buf, size_t cap)
{
    if (d->text == NULL)
        return model;
    const char *colon = strchr(model, ':');
    bool has_vocab = colon != NULL && strstr(colon, "vocab=") != NULL;
    bool has_len = colon != NULL && strstr(colon, "seq_len=") != NULL;
    int w = snprintf(buf, cap, "%s", model);
    const char *sep = colon != NULL ? "," : ":";
    if (w >= 0 && (size_t)w < cap && !has_vocab) {
        w += snprintf(buf + w, cap - (size_t)w, "%svocab=%lld", sep, (long long)d->classes);
        sep = ",";
    }
    if (w >= 0 && (size_t)w < cap && !has_len)
        w += snprintf(buf + w, cap - (size_t)w, "%sseq_len=%lld", sep, (long long)d->seq_len);
    if (w < 0 || (size_t)w >= cap) {
        fprintf(stderr, "sgdlab %s: --model: spec too long\n", cmd);
        return NULL;
    }
    return buf;
}

bool cli_save_checkpoint(const char *cmd, const char *path, const sgd_checkpoint_parts *parts, const cli_data *d)
{
    sgd_ckpt_writer *w;
    sgd_status st = sgd_ckpt_writer_new(&w, NULL);
    if (st == SGD_OK && (st = sgd_checkpoint_add(w, parts)) == SGD_OK &&
        (d->text == NULL || (st = sgd_checkpoint_add_vocab(w, sgd_text_vocab(d->text))) == SGD_OK))
        st = sgd_ckpt_writer_save(w, path);
    sgd_ckpt_writer_free(w);
    if (st != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --save %s: %s\n", cmd, path, sgd_error_last());
        return false;
    }
    return true;
}

bool cli_load_checkpoint(const char *cmd, const char *path, const sgd_checkpoint_parts *parts, const cli_data *d)
{
    sgd_ckpt_reader *r;
    sgd_status st = sgd_ckpt_reader_open(&r, path, NULL);
    if (st == SGD_OK && (d->text == NULL || (st = sgd_checkpoint_check_vocab(r, sgd_text_vocab(d->text))) == SGD_OK))
        st = sgd_checkpoint_restore(r, parts);
    sgd_ckpt_reader_free(r);
    if (st != SGD_OK) {
        fprintf(stderr, "sgdlab %s: --resume %s: %s\n", cmd, path, sgd_error_last());
        return false;
    }
    return true;
}

const char *cli_text_summary(const cli_data *d, char *buf, size_t cap)
{
    const sgd_vocab *v = sgd_text_vocab(d->text);
    bool bytes = sgd_vocab_unit(v) == SGD_TEXT_BYTES;
    snprintf(buf, cap, "%lld %s, %lld symbols", (long long)sgd_text_length(d->text), bytes ? "bytes" : "characters",
             (long long)sgd_vocab_size(v));
    return buf;
}

bool cli_text_sample(FILE *f, sgd_model *m, const sgd_vocab *v, int64_t length, double temperature, uint64_t seed,
                     const char *prime, char **out)
{
    if (out != NULL)
        *out = NULL;
    size_t cap = sgd_text_generate_bound(v, length);
    char *text = malloc(cap);
    if (text == NULL)
        return false;
    sgd_generate_options g;
    sgd_generate_options_init(&g);
    g.prime = prime;
    g.length = length;
    g.temperature = temperature;
    g.seed = seed;
    if (sgd_text_generate(m, v, &g, text, cap, NULL) != SGD_OK) {
        free(text);
        return false;
    }
    if (f != NULL) {
        /* Each line indented, so that the sample stands apart from the tool's own lines. */
        fprintf(f, "    | %s", prime != NULL ? prime : "");
        for (const char *p = text; *p; p++) {
            fputc(*p, f);
            if (*p == '\n' && p[1] != '\0')
                fputs("    | ", f);
        }
        if (text[0] == '\0' || text[strlen(text) - 1] != '\n')
            fputc('\n', f);
    }
    if (out != NULL)
        *out = text;
    else
        free(text);
    return true;
}
