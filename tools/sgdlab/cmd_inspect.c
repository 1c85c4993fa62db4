/*
 * sgdlab inspect: prints a checkpoint's sections and tensors, verifies it, and
 * names what is wrong in a damaged file. SPDX-License-Identifier: MIT
 */
#include "cli.h"
#include "commands.h"

#include "sgdlab/sgdlab.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_command spec = {
    .name = "inspect",
    .args = "FILE",
    .min_args = 1,
    .max_args = 1,
    .description =
        "Validates the checkpoint FILE (signature, version, header, every size and offset,\n"
        "every checksum) and prints its sections and tensors: dtype, shape, bytes, the\n"
        "section checksums, scalar and text values, and for float tensors their range,\n"
        "mean and number of non-finite values. A damaged file is reported with what is\n"
        "wrong in it (which field, section or tensor).\n",
    .epilog = "Exit status: 0 for a valid checkpoint, 1 for a damaged or invalid one, 2 for\n"
              "bad arguments or a file that cannot be read.\n",
};

typedef struct stats {
    double min, max, sum;
    uint64_t nonfinite, finite;
} stats;

static void float_stats(const sgd_ckpt_reader *r, const sgd_ckpt_tensor_info *t, stats *s)
{
    memset(s, 0, sizeof *s);
    s->min = INFINITY;
    s->max = -INFINITY;
    const void *data;
    if (sgd_ckpt_reader_tensor_data(r, t->section, t->name, &data, NULL) != SGD_OK)
        return;
    const unsigned char *p = data;
    for (uint64_t i = 0; i < t->count; i++) {
        double v;
        if (t->dtype == SGD_CKPT_F32) {
            uint32_t bits = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                            (uint32_t)p[4 * i + 3] << 24;
            float f;
            memcpy(&f, &bits, sizeof f);
            v = f;
        } else {
            uint64_t bits = 0;
            for (int k = 7; k >= 0; k--)
                bits = bits << 8 | p[8 * i + (uint64_t)k];
            memcpy(&v, &bits, sizeof v);
        }
        if (!isfinite(v)) {
            s->nonfinite++;
            continue;
        }
        s->finite++;
        s->sum += v;
        if (v < s->min)
            s->min = v;
        if (v > s->max)
            s->max = v;
    }
}

static void print_shape(FILE *f, const sgd_ckpt_tensor_info *t)
{
    fputc('[', f);
    for (uint32_t d = 0; d < t->rank; d++)
        fprintf(f, "%s%lld", d ? "," : "", (long long)t->dims[d]);
    fputc(']', f);
}

/* Text of a u8 tensor, JSON-escaped when `json`. */
static void print_text(FILE *f, const sgd_ckpt_reader *r, const sgd_ckpt_tensor_info *t, int json)
{
    const void *data;
    uint64_t n;
    if (sgd_ckpt_reader_tensor_data(r, t->section, t->name, &data, &n) != SGD_OK)
        return;
    const unsigned char *p = data;
    fputc('"', f);
    for (uint64_t i = 0; i < n; i++) {
        unsigned c = p[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, json ? "\\u%04x" : "\\x%02x", c);
        else
            fputc((int)c, f);
    }
    fputc('"', f);
}

static void print_value(FILE *f, const sgd_ckpt_reader *r, const sgd_ckpt_tensor_info *t, int json)
{
    if (t->dtype == SGD_CKPT_U8 && t->rank == 1) {
        /* Short printable bytes are text (a model spec, a kind); longer or binary ones a blob. */
        const void *data;
        uint64_t n;
        if (sgd_ckpt_reader_tensor_data(r, t->section, t->name, &data, &n) != SGD_OK)
            return;
        bool text = n <= 256;
        for (uint64_t i = 0; text && i < n; i++)
            text = ((const unsigned char *)data)[i] >= 0x20 && ((const unsigned char *)data)[i] < 0x7f;
        if (text) {
            fprintf(f, json ? ",\"text\":" : "  ");
            print_text(f, r, t, json);
        }
    } else if (t->rank == 1 && t->count <= 8 && (t->dtype == SGD_CKPT_I64 || t->dtype == SGD_CKPT_U64)) {
        /* A few integers (a step counter, a generator state): the values themselves. */
        int64_t v[8];
        if (sgd_ckpt_reader_read_tensor(r, t->section, t->name, t->dtype, 1, t->dims, v, sizeof v) != SGD_OK)
            return;
        fprintf(f, json ? ",\"values\":[" : "  = ");
        for (uint64_t i = 0; i < t->count; i++) {
            if (t->dtype == SGD_CKPT_I64)
                fprintf(f, "%s%lld", i ? (json ? "," : " ") : "", (long long)v[i]);
            else
                fprintf(f, json ? "%s\"%016llx\"" : "%s%016llx", i ? (json ? "," : " ") : "",
                        (unsigned long long)v[i]); /* JSON numbers lose bits past 2^53: hex strings */
        }
        if (json)
            fputc(']', f);
    } else if (t->rank == 0 && t->dtype == SGD_CKPT_I64) {
        int64_t v;
        if (sgd_ckpt_reader_read_i64(r, t->section, t->name, &v) == SGD_OK)
            fprintf(f, json ? ",\"value\":%lld" : "  = %lld", (long long)v);
    } else if (t->rank == 0 && t->dtype == SGD_CKPT_F64) {
        double v;
        if (sgd_ckpt_reader_read_f64(r, t->section, t->name, &v) == SGD_OK) {
            if (json && !isfinite(v))
                fprintf(f, ",\"value\":null");
            else
                fprintf(f, json ? ",\"value\":%.17g" : "  = %.17g", v);
        }
    } else if ((t->dtype == SGD_CKPT_F32 || t->dtype == SGD_CKPT_F64) && t->count > 0) {
        stats s;
        float_stats(r, t, &s);
        double mean = s.finite ? s.sum / (double)s.finite : NAN;
        if (json) {
            if (s.finite)
                fprintf(f, ",\"min\":%.9g,\"max\":%.9g,\"mean\":%.9g", s.min, s.max, mean);
            fprintf(f, ",\"nonfinite\":%llu", (unsigned long long)s.nonfinite);
        } else {
            if (s.finite)
                fprintf(f, "  min %.4g  max %.4g  mean %.4g", s.min, s.max, mean);
            if (s.nonfinite)
                fprintf(f, "  %llu non-finite", (unsigned long long)s.nonfinite);
        }
    }
}

static int report(const char *path, const sgd_ckpt_reader *r, int json)
{
    uint32_t major = 0, minor = 0;
    sgd_ckpt_reader_version(r, &major, &minor);
    size_t nsec = sgd_ckpt_reader_section_count(r);
    if (json)
    {
        printf("{\"schema\":\"" CLI_SCHEMA("inspect") "\",\"command\":\"inspect\",\"file\":");
        cli_json_str(stdout, path);
        printf(",\"valid\":true,\"status\":\"SGD_OK\",\"error\":null,\"size\":%llu,\"version\":\"%u.%u\",\"sections\":[",
               (unsigned long long)sgd_ckpt_reader_file_size(r), major, minor);
    }
    else
        printf("%s: valid libsgdlab checkpoint, format %u.%u, %llu bytes, %zu section(s), all checksums verified\n",
               path, major, minor, (unsigned long long)sgd_ckpt_reader_file_size(r), nsec);
    for (size_t s = 0; s < nsec; s++) {
        sgd_ckpt_section_info si = {.struct_size = sizeof si};
        if (sgd_ckpt_reader_section_info(r, s, &si) != SGD_OK)
            return SGDLAB_EXIT_FAIL;
        if (json) {
            printf("%s{\"name\":", s ? "," : "");
            cli_json_str(stdout, si.name);
            printf(",\"required\":%s,\"offset\":%llu,\"size\":%llu,\"crc32c\":\"%08x\",\"tensors\":[",
                   (si.flags & SGD_CKPT_SECTION_REQUIRED) ? "true" : "false", (unsigned long long)si.offset,
                   (unsigned long long)si.size, si.crc32c);
        }
        else
            printf("\nsection '%s'%s: %llu tensor(s), %llu bytes at offset %llu, crc32c %08x\n", si.name,
                   (si.flags & SGD_CKPT_SECTION_REQUIRED) ? " (required)" : "",
                   (unsigned long long)si.tensor_count, (unsigned long long)si.size, (unsigned long long)si.offset,
                   si.crc32c);
        for (size_t i = 0; i < si.tensor_count; i++) {
            sgd_ckpt_tensor_info t = {.struct_size = sizeof t};
            if (sgd_ckpt_reader_tensor_info(r, s, i, &t) != SGD_OK)
                return SGDLAB_EXIT_FAIL;
            if (json) {
                printf("%s{\"name\":", i ? "," : "");
                cli_json_str(stdout, t.name);
                printf(",\"dtype\":\"%s\",\"shape\":", sgd_ckpt_dtype_name(t.dtype));
                print_shape(stdout, &t);
                printf(",\"bytes\":%llu", (unsigned long long)t.nbytes);
                print_value(stdout, r, &t, 1);
                printf("}");
            } else {
                printf("  %-24s %-4s ", t.name, sgd_ckpt_dtype_name(t.dtype));
                print_shape(stdout, &t);
                printf("  %llu bytes", (unsigned long long)t.nbytes);
                print_value(stdout, r, &t, 0);
                printf("\n");
            }
        }
        if (json)
            printf("]}");
    }
    if (json)
        printf("]}\n");
    return SGDLAB_EXIT_OK;
}

int sgdlab_cmd_inspect(int argc, char **argv)
{
    cli c;
    const cli_opt opts[] = {
        CLI_SECTION("options"),
        CLI_OPT_JSON(&c, "one JSON object instead of the readable report (docs/cli.md)"),
        CLI_OPT_OUTPUT(&c),
        CLI_OPT_QUIET(&c, "print nothing: the exit status says whether FILE is a valid checkpoint"),
        CLI_END,
    };
    int prc = cli_parse(&c, &spec, opts, argc, argv);
    if (prc >= 0)
        return prc;
    int json = c.json;
    const char *path = c.args[0];
    sgd_ckpt_reader *r;
    sgd_status st = sgd_ckpt_reader_open(&r, path, NULL);
    if (st == SGD_EIO || st == SGD_EINVAL) {
        cli_fail(&c, NULL, "%s", sgd_error_last());
        return SGDLAB_EXIT_USAGE;
    }
    if (st != SGD_OK) {
        if (c.quiet) {
            /* nothing */
        } else if (json) {
            printf("{\"schema\":\"" CLI_SCHEMA("inspect") "\",\"command\":\"inspect\",\"file\":");
            cli_json_str(stdout, path);
            printf(",\"valid\":false,\"status\":");
            cli_json_status(stdout, st);
            printf(",\"error\":");
            cli_json_str(stdout, sgd_error_last());
            printf("}\n");
        } else {
            printf("%s: NOT a valid checkpoint: %s\n  %s\n", path, sgd_status_str(st), sgd_error_last());
        }
        return SGDLAB_EXIT_FAIL;
    }
    int rc = c.quiet ? SGDLAB_EXIT_OK : report(path, r, json);
    sgd_ckpt_reader_free(r);
    return rc;
}
