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

static const cli_command spec = {
    .name = "generate",
    .description =
        "Writes text with a character-level language model saved in a checkpoint (by\n"
        "sgdlab train --data text ... --save CKPT, or sgdlab case text --save CKPT): the\n"
        "model reads the prime, then draws each next character from its softmax at the\n"
        "temperature, one at a time. The same checkpoint, prime and seed give the same text.\n",
    .epilog = "Exit status: 0 on success; 1 when the checkpoint holds no text model, or standard\n"
              "output fails; 2 for bad arguments or an unreadable checkpoint.\n",
};

int sgdlab_cmd_generate(int argc, char **argv)
{
    const char *ckpt = NULL, *prime = NULL;
    int64_t length = 500, seed = 0;
    double temperature = 0.8;
    cli c;
    const cli_opt opts[] = {
        CLI_SECTION("options"),
        {.name = "resume", .kind = CLI_STRING, .dest = &ckpt, .arg = "CKPT",
         .help = "the checkpoint (its model and its vocabulary)"},
        {.name = "prime", .kind = CLI_STRING, .dest = &prime, .arg = "TEXT",
         .help = "text the model reads first, printed before what it writes (default: none; the model starts "
                 "from a newline)"},
        {.name = "length", .kind = CLI_INT, .dest = &length, .ilo = 0, .ihi = 1 << 24, .arg = "N",
         .help = "characters to write (default 500)"},
        {.name = "temperature", .kind = CLI_DOUBLE, .dest = &temperature, .lo = 0, .hi = 100, .arg = "T",
         .help = "0 to 100 (default 0.8): lower is more conservative; 0 always takes the most likely character"},
        {.name = "seed", .kind = CLI_INT, .dest = &seed, .ilo = 0, .ihi = INT64_MAX, .arg = "S",
         .help = "seed of the sampling (default 0)"},
        CLI_SECTION("output"),
        CLI_OPT_JSON(&c, "one JSON object: the prime, the text, the options (docs/cli.md)"),
        CLI_OPT_OUTPUT(&c),
        CLI_END,
    };
    int prc = cli_parse(&c, &spec, opts, argc, argv);
    if (prc >= 0)
        return prc;
    const bool json = c.json;
    if (ckpt == NULL) {
        cli_fail(&c, "--resume", "the checkpoint of a text model is needed (--resume CKPT; --help)");
        return SGDLAB_EXIT_USAGE;
    }
    sgd_ckpt_reader *r = NULL;
    sgd_model *m = NULL;
    sgd_vocab *v = NULL;
    char *text = NULL;
    int rc = SGDLAB_EXIT_USAGE;
    if (sgd_ckpt_reader_open(&r, ckpt, NULL) != SGD_OK) {
        cli_fail(&c, "--resume", "%s: %s", ckpt, sgd_error_last());
        goto out;
    }
    rc = SGDLAB_EXIT_FAIL;
    if (sgd_checkpoint_load_vocab(&v, r, NULL) != SGD_OK) {
        cli_fail(&c, "--resume", "%s: %s (is it a text model? train one with --data text)", ckpt, sgd_error_last());
        goto out;
    }
    if (sgd_checkpoint_load_model(&m, r, NULL, NULL) != SGD_OK) {
        cli_fail(&c, "--resume", "%s: %s", ckpt, sgd_error_last());
        goto out;
    }
    size_t cap = sgd_text_generate_bound(v, length), len = 0;
    text = malloc(cap);
    if (text == NULL) {
        cli_fail(&c, NULL, "out of memory");
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
        cli_fail(&c, NULL, "%s", sgd_error_last());
        rc = st == SGD_ENOTFOUND || st == SGD_EFORMAT ? SGDLAB_EXIT_USAGE : SGDLAB_EXIT_FAIL;
        goto out;
    }
    if (json) {
        printf("{\"schema\":\"" CLI_SCHEMA("generate") "\",\"command\":\"generate\",\"checkpoint\":");
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
