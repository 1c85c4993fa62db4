/*
 * sgdlab generate: writes text from a character model saved by
 * `sgdlab train --data text... --save CKPT` (or `sgdlab case text --save`):
 * the model and its vocabulary from the checkpoint, then sgd_text_generate().
 * SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "commands.h"

#include <stdlib.h>
#include <string.h>

void sgdlab_help_generate(void)
{
    printf("usage: sgdlab generate --resume CKPT [options]\n"
           "\n"
           "Writes text with a character-level language model saved in a checkpoint (by\n"
           "sgdlab train --data text ... --save CKPT, or sgdlab case text --save DIR): the\n"
           "model reads the prime, then draws each next character from its softmax at the\n"
           "temperature, one at a time. The same checkpoint, prime and seed give the same text.\n"
           "\n"
           "options:\n"
           "  --resume CKPT          the checkpoint (its model and its vocabulary)\n"
           "  --prime TEXT           text the model reads first, printed before what it writes\n"
           "                         (default: none; the model starts from a newline)\n"
           "  --length N             characters to write (default 500)\n"
           "  --temperature T        0 to 100 (default 0.8): lower is more conservative; 0 always\n"
           "                         takes the most likely character\n"
           "  --seed S               seed of the sampling (default 0)\n"
           "  --json                 one JSON object: the prime, the text, the options\n"
           "  -h, --help             show this help\n"
           "\n"
           "Exit status: 0 on success; 1 when the checkpoint holds no text model; 2 for bad\n"
           "arguments or an unreadable checkpoint.\n");
}

int sgdlab_cmd_generate(int argc, char **argv)
{
    const char *ckpt = NULL, *prime = NULL;
    int64_t length = 500, seed = 0;
    double temperature = 0.8;
    bool json = false;
    cli_args a;
    cli_args_init(&a, "generate", argc, argv);
    const char *name;
    while ((name = cli_next(&a)) != NULL) {
        if (strcmp(name, "help") == 0) {
            sgdlab_help_generate();
            return SGDLAB_EXIT_OK;
        } else if (strcmp(name, "resume") == 0) {
            cli_string(&a, &ckpt);
        } else if (strcmp(name, "prime") == 0) {
            cli_string(&a, &prime);
        } else if (strcmp(name, "length") == 0) {
            cli_int(&a, 0, 1 << 24, &length);
        } else if (strcmp(name, "temperature") == 0) {
            cli_double(&a, 0, 100, false, &temperature);
        } else if (strcmp(name, "seed") == 0) {
            cli_int(&a, 0, INT64_MAX, &seed);
        } else if (strcmp(name, "json") == 0) {
            if (cli_flag(&a))
                json = true;
        } else {
            cli_unknown(&a, name);
        }
    }
    if (a.error)
        return SGDLAB_EXIT_USAGE;
    if (ckpt == NULL) {
        fprintf(stderr, "sgdlab generate: --resume CKPT: the checkpoint of a text model is needed (--help)\n");
        return SGDLAB_EXIT_USAGE;
    }
    sgd_ckpt_reader *r = NULL;
    sgd_model *m = NULL;
    sgd_vocab *v = NULL;
    char *text = NULL;
    int rc = SGDLAB_EXIT_USAGE;
    if (sgd_ckpt_reader_open(&r, ckpt, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab generate: --resume %s: %s\n", ckpt, sgd_error_last());
        goto out;
    }
    rc = SGDLAB_EXIT_FAIL;
    if (sgd_checkpoint_load_vocab(&v, r, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab generate: --resume %s: %s (is it a text model? train one with --data text)\n", ckpt,
                sgd_error_last());
        goto out;
    }
    if (sgd_checkpoint_load_model(&m, r, NULL, NULL) != SGD_OK) {
        fprintf(stderr, "sgdlab generate: --resume %s: %s\n", ckpt, sgd_error_last());
        goto out;
    }
    size_t cap = sgd_text_generate_bound(v, length), len = 0;
    text = malloc(cap);
    if (text == NULL) {
        fprintf(stderr, "sgdlab generate: out of memory\n");
        goto out;
    }
    sgd_generate_options g;
    sgd_generate_options_init(&g);
    g.prime = prime;
    g.length = length;
    g.temperature = temperature;
    g.seed = (uint64_t)seed;
    sgd_status st = sgd_text_generate(m, v, &g, text, cap, &len);
    if (st != SGD_OK) {
        fprintf(stderr, "sgdlab generate: %s\n", sgd_error_last());
        rc = st == SGD_ENOTFOUND || st == SGD_EFORMAT ? SGDLAB_EXIT_USAGE : SGDLAB_EXIT_FAIL;
        goto out;
    }
    if (json) {
        printf("{\"command\":\"generate\",\"checkpoint\":");
        cli_json_str(stdout, ckpt);
        printf(",\"model\":");
        cli_json_str(stdout, sgd_model_spec(m));
        printf(",\"vocabulary\":%lld,\"unit\":\"%s\",\"prime\":", (long long)sgd_vocab_size(v),
               sgd_vocab_unit(v) == SGD_TEXT_BYTES ? "bytes" : "utf8");
        if (prime != NULL)
            cli_json_str(stdout, prime);
        else
            printf("null");
        printf(",\"length\":%lld,\"temperature\":%.9g,\"seed\":%lld,\"text\":", (long long)length, temperature,
               (long long)seed);
        cli_json_str(stdout, text);
        printf("}\n");
    } else {
        fputs(prime != NULL ? prime : "", stdout);
        fwrite(text, 1, len, stdout);
        if (len == 0 || text[len - 1] != '\n')
            putchar('\n');
    }
    rc = SGDLAB_EXIT_OK;
out:
    free(text);
    sgd_model_free(m);
    sgd_vocab_free(v);
    sgd_ckpt_reader_free(r);
    return rc;
}
