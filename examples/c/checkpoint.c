/*
 * Checkpoints: save a small model's parameters and a step counter
 * crash-safely, load them back into the caller's arrays, and see how a
 * checkpoint of another shape is refused.
 *
 *   example_checkpoint [PATH]     (default: a file in a new directory under /tmp)
 */
#define _POSIX_C_SOURCE 200809L
#include <sgdlab/sgdlab.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, sgd_error_last());
    return 1;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/sgdlab-example-XXXXXX", path[512];
    if (argc > 1) {
        snprintf(path, sizeof path, "%s", argv[1]);
    } else {
        if (mkdtemp(dir) == NULL)
            return 1;
        snprintf(path, sizeof path, "%s/model.sgdc", dir);
    }

    /* A 3x4 layer. The writer borrows the arrays: nothing is copied until it writes. */
    float weight[3][4], bias[3];
    for (int i = 0; i < 3; i++) {
        bias[i] = 0.1f * (float)i;
        for (int j = 0; j < 4; j++)
            weight[i][j] = (float)(i * 4 + j) / 12.0f;
    }
    const int64_t wshape[] = {3, 4}, bshape[] = {3};
    sgd_ckpt_writer *w;
    if (sgd_ckpt_writer_new(&w, NULL) != SGD_OK)
        return fail("sgd_ckpt_writer_new");
    if (sgd_ckpt_writer_begin_section(w, "model", SGD_CKPT_SECTION_REQUIRED) != SGD_OK ||
        sgd_ckpt_writer_add_tensor(w, "0.weight", SGD_CKPT_F32, 2, wshape, weight) != SGD_OK ||
        sgd_ckpt_writer_add_tensor(w, "0.bias", SGD_CKPT_F32, 1, bshape, bias) != SGD_OK ||
        sgd_ckpt_writer_begin_section(w, "trainer", SGD_CKPT_SECTION_REQUIRED) != SGD_OK ||
        sgd_ckpt_writer_add_i64(w, "step", 1500) != SGD_OK || sgd_ckpt_writer_save(w, path) != SGD_OK) {
        sgd_ckpt_writer_free(w);
        return fail("saving");
    }
    sgd_ckpt_writer_free(w);

    /* Load: the whole file is validated (sizes, offsets, checksums) before this returns. */
    sgd_ckpt_reader *r;
    if (sgd_ckpt_reader_open(&r, path, NULL) != SGD_OK)
        return fail("sgd_ckpt_reader_open");
    const char *known[] = {"model", "trainer"};
    float w2[3][4], b2[3];
    int64_t step;
    if (sgd_ckpt_reader_check_sections(r, known, 2) != SGD_OK ||
        sgd_ckpt_reader_read_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, wshape, w2, sizeof w2) != SGD_OK ||
        sgd_ckpt_reader_read_tensor(r, "model", "0.bias", SGD_CKPT_F32, 1, bshape, b2, sizeof b2) != SGD_OK ||
        sgd_ckpt_reader_read_i64(r, "trainer", "step", &step) != SGD_OK) {
        sgd_ckpt_reader_free(r);
        return fail("loading");
    }
    printf("%s: %llu bytes, step %lld, weights %s\n", path, (unsigned long long)sgd_ckpt_reader_file_size(r),
           (long long)step, memcmp(w2, weight, sizeof w2) == 0 && memcmp(b2, bias, sizeof b2) == 0 ? "identical" : "DIFFER");

    /* A model of another architecture is refused, naming the first mismatch. */
    const int64_t other[] = {5, 4};
    sgd_status st = sgd_ckpt_reader_check_tensor(r, "model", "0.weight", SGD_CKPT_F32, 2, other);
    printf("loading into a 5x4 layer: %s\n  %s\n", sgd_status_str(st), sgd_error_last());
    sgd_ckpt_reader_free(r);

    if (argc <= 1) {
        unlink(path);
        rmdir(dir);
    }
    return st == SGD_ESHAPE ? 0 : 1;
}
