/*
 * The schedule half of the fixture runner (tools/golden/golden_sched.c) over
 * every tests/data/golden/sched__*.txt: the shared PyTorch fixtures and the
 * ones tests/gen_sched_fixtures.py generated with other parameters; the lr
 * columns of the optimizer fixtures that follow a schedule; and what the
 * runner must do with wrong values and malformed files.
 */
#include "util/sgdtest.h"

#include "golden/golden.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Sorted names of the files in tests/data/golden starting with `prefix`. */
static size_t list_fixtures(const char *prefix, char names[][128], size_t max)
{
    DIR *d = opendir(sgdt_data_path("golden"));
    if (d == NULL)
        fail_msg("cannot open %s", sgdt_data_path("golden"));
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || l < 5 || strcmp(e->d_name + l - 4, ".txt") != 0)
            continue;
        assert_true(n < max && l < 128);
        strcpy(names[n++], e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    return n;
}

static int check_text(const char *name, const char *text, size_t len, golden_result *r)
{
    /* As golden_main.c hands it over: a copy NUL-terminated at text[len]. */
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    copy[len] = '\0';
    int rc = golden_check_sched(name, copy, len, r);
    free(copy);
    return rc;
}

static void test_every_fixture(void **state)
{
    (void)state;
    static char names[256][128];
    size_t n = list_fixtures("sched__", names, 256), shared = 0, generated = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        char rel[160];
        snprintf(rel, sizeof rel, "golden/%s", names[i]);
        size_t len;
        char *text = slurp(sgdt_data_path(rel), &len);
        golden_result r;
        int rc = check_text(names[i], text, len, &r);
        free(text);
        print_message("%s %-50s worst=%.3g %s\n", rc == 0 && r.ok ? "PASS" : "FAIL", names[i], r.worst, r.msg);
        if (rc != 0 || !r.ok)
            fail_msg("%s: rc=%d %s", names[i], rc, r.msg);
        worst = fmax(worst, r.worst);
        if (strncmp(names[i], "sched__gen_", 11) == 0)
            generated++;
        else
            shared++;
    }
    print_message("%zu shared and %zu generated fixtures, worst relative error %.3g\n", shared, generated, worst);
    assert_int_equal(shared, 15);
    assert_true(generated >= 20);
}

/*
 * The optimizer fixtures whose lr column follows a schedule name it in a
 * comment ("# the lr column follows the schedule step step_size=7 gamma=0.5");
 * their base lr is the optimizer's lr=. Turn each into a schedule fixture.
 */
static void test_optim_lr_columns(void **state)
{
    (void)state;
    static char names[64][128];
    size_t n = list_fixtures("optim__", names, 64), checked = 0;
    for (size_t i = 0; i < n; i++) {
        char rel[160];
        snprintf(rel, sizeof rel, "golden/%s", names[i]);
        size_t len;
        char *text = slurp(sgdt_data_path(rel), &len);
        const char *follows = strstr(text, "# the lr column follows the schedule ");
        if (follows == NULL) {
            free(text);
            continue;
        }
        follows += strlen("# the lr column follows the schedule ");
        const char *lr_key = strstr(text, " lr=");
        assert_non_null(lr_key);
        double base_lr = strtod(lr_key + 4, NULL);
        size_t cap = len + 256, o = 0, steps = 0;
        char *fx = malloc(cap);
        assert_non_null(fx);
        o += (size_t)snprintf(fx + o, cap - o, "scheduler %.*s\n", (int)strcspn(follows, "\n"), follows);
        /* "step N lr L" lines, in order. */
        char *lrs = malloc(len + 1);
        assert_non_null(lrs);
        size_t lo = 0;
        for (const char *p = text; (p = strstr(p, "\nstep ")) != NULL; p++) {
            const char *l = strstr(p + 1, " lr ");
            assert_non_null(l);
            size_t w = strcspn(l + 4, "\n");
            lrs[lo++] = ' ';
            memcpy(lrs + lo, l + 4, w);
            lo += w;
            steps++;
        }
        lrs[lo] = '\0';
        o += (size_t)snprintf(fx + o, cap - o, "base_lr %.17g steps %zu\nlr%s\n", base_lr, steps, lrs);
        golden_result r;
        int rc = check_text(names[i], fx, o, &r);
        print_message("%s lr column of %s (%zu steps) worst=%.3g %s\n", rc == 0 && r.ok ? "PASS" : "FAIL", names[i],
                      steps, r.worst, r.msg);
        if (rc != 0 || !r.ok)
            fail_msg("%s: rc=%d %s", names[i], rc, r.msg);
        checked++;
        free(lrs);
        free(fx);
        free(text);
    }
    assert_int_equal(checked, 3); /* adagrad under exponential, adam under step, nadam under cosine */
}

/* The runner fails a file whose values are off by more than 1e-9 relative, and only then. */
static void test_detects_wrong_values(void **state)
{
    (void)state;
    static const char *good = "scheduler step step_size=2 gamma=0.5\n"
                              "base_lr 0.1 steps 5\n"
                              "lr 0.1 0.1 0.05 0.05 0.025\n";
    golden_result r;
    assert_int_equal(check_text("good", good, strlen(good), &r), 0);
    assert_true(r.ok);
    assert_true(r.worst == 0);

    static const char *near = "scheduler step step_size=2 gamma=0.5\n"
                              "base_lr 0.1 steps 5\n"
                              "lr 0.1 0.1 0.05 0.05 0.0250000000001\n"; /* 4e-12 off: passes */
    assert_int_equal(check_text("near", near, strlen(near), &r), 0);
    assert_true(r.ok);
    assert_true(r.worst > 1e-12 && r.worst < 1e-11);

    static const char *off = "scheduler step step_size=2 gamma=0.5\n"
                             "base_lr 0.1 steps 5\n"
                             "lr 0.1 0.1 0.05 0.0500000001 0.025\n"; /* 2e-9 off at step 3 */
    assert_int_equal(check_text("off", off, strlen(off), &r), 0);
    assert_false(r.ok);
    assert_non_null(strstr(r.msg, "step 3"));

    /* A plateau whose metric is changed reduces at another step. */
    static const char *plateau = "scheduler plateau factor=0.5 patience=1\n"
                                 "base_lr 1 steps 6\n"
                                 "lr 1 1 1 1 0.5 0.5\n"
                                 "metric 3 2 2 2 2 2\n";
    assert_int_equal(check_text("plateau", plateau, strlen(plateau), &r), 0);
    assert_true(r.ok);
    static const char *plateau2 = "scheduler plateau factor=0.5 patience=1\n"
                                  "base_lr 1 steps 6\n"
                                  "lr 1 1 1 1 0.5 0.5\n"
                                  "metric 3 2 1 1 1 1\n";
    assert_int_equal(check_text("plateau2", plateau2, strlen(plateau2), &r), 0);
    assert_false(r.ok);

    /* A momentum line is checked too. */
    static const char *cyc = "scheduler cyclic base_lr=0.1 max_lr=0.3 step_size_up=2\n"
                             "base_lr 0.1 steps 4\n"
                             "lr 0.1 0.2 0.3 0.2\n"
                             "momentum 0.9 0.85 0.8 0.85\n";
    assert_int_equal(check_text("cyc", cyc, strlen(cyc), &r), 0);
    assert_true(r.ok);
    static const char *cyc2 = "scheduler cyclic base_lr=0.1 max_lr=0.3 step_size_up=2\n"
                              "base_lr 0.1 steps 4\n"
                              "lr 0.1 0.2 0.3 0.2\n"
                              "momentum 0.9 0.85 0.81 0.85\n";
    assert_int_equal(check_text("cyc2", cyc2, strlen(cyc2), &r), 0);
    assert_false(r.ok);
    assert_non_null(strstr(r.msg, "momentum"));

    /* A schedule libsgdlab refuses is a failure, with its message. */
    static const char *refused = "scheduler cosine T_max=0\nbase_lr 0.1 steps 1\nlr 0.1\n";
    assert_int_equal(check_text("refused", refused, strlen(refused), &r), 0);
    assert_false(r.ok);
    assert_non_null(strstr(r.msg, "T_max=0"));
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"", "line 0"},
        {"# only a comment\n", "expected 'scheduler"},
        {"optimizer sgd lr=0.1\n", "expected 'scheduler'"},
        {"scheduler step step_size=2\n", "base_lr"},
        {"scheduler step step_size=2\nbase_lr x steps 2\nlr 1 1\n", "base_lr 'x'"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps -2\nlr 1 1\n", "steps '-2'"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps 99999999999\nlr 1 1\n", "steps"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps 2 extra\nlr 1 1\n", "line 2"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps 2\n", "no 'lr' line"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps 3\nlr 0.1 0.1\n", "lr has 2 values"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps 1\nlr 0.1 0.1\n", "more than 1"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps 2\nlr 0.1 nan\n", "value 2 'nan'"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps 2\nlr 0.1 0.1\nlr 0.1 0.1\n", "line 4: unexpected 'lr'"},
        {"scheduler step step_size=2\nbase_lr 0.1 steps 2\nlr 0.1 0.1\nx 1\n", "unexpected 'x'"},
        {"scheduler step step_size\nbase_lr 0.1 steps 2\nlr 0.1 0.1\n", "line 1: cannot read 'step_size'"},
        {"scheduler step step_size=(2)\nbase_lr 0.1 steps 2\nlr 0.1 0.1\n", "cannot read"},
        {"scheduler\nbase_lr 0.1 steps 2\nlr 0.1 0.1\n", "line 1"},
        {"scheduler sequential milestones=2 children=;cosine,T_max=3\nbase_lr 0.1 steps 2\nlr 0.1 0.1\n",
         "cannot read"},
        {"scheduler plateau\nbase_lr 0.1 steps 2\nlr 0.1 0.1\n", "no 'metric' line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        golden_result r;
        int rc = check_text("bad", bad[i].text, strlen(bad[i].text), &r);
        if (rc != -1 || strstr(r.msg, bad[i].needle) == NULL)
            fail_msg("case %zu: rc=%d msg '%s', expected -1 and '%s'", i, rc, r.msg, bad[i].needle);
    }
    /* Embedded NUL bytes are data, not the end of the file. */
    static const char nul[] = "scheduler step step_size=2\nbase_lr 0.1 steps 2\nlr 0.1 0.\0001\n";
    golden_result r;
    assert_int_equal(check_text("nul", nul, sizeof nul - 1, &r), -1);
}

/* Every truncation and many corruptions of real fixtures: never a crash, always a verdict. */
static void test_truncated_and_corrupted(void **state)
{
    (void)state;
    const char *files[] = {"golden/sched__warmup_then_cosine.txt", "golden/sched__plateau_rel.txt",
                           "golden/sched__gen_onecycle_linear_momentum.txt"};
    uint64_t seed = 0x9E3779B97F4A7C15u;
    size_t malformed = 0, failed = 0, runs = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        char *text = slurp(sgdt_data_path(files[f]), &len);
        for (size_t cut = 0; cut < len; cut++) {
            golden_result r;
            int rc = check_text("cut", text, cut, &r);
            assert_true(rc == 0 || rc == -1);
            malformed += rc == -1;
            failed += rc == 0 && !r.ok;
            runs++;
        }
        char *copy = malloc(len);
        assert_non_null(copy);
        for (int k = 0; k < 3000; k++) {
            memcpy(copy, text, len);
            for (int flips = 0; flips < 3; flips++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                copy[seed % len] = (char)(seed >> 32);
            }
            golden_result r;
            int rc = check_text("flip", copy, len, &r);
            assert_true(rc == 0 || rc == -1);
            runs++;
        }
        free(copy);
        free(text);
    }
    print_message("%zu damaged files: %zu truncations malformed, %zu truncations failed\n", runs, malformed, failed);
    assert_true(malformed > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_fixture),
        cmocka_unit_test(test_optim_lr_columns),
        cmocka_unit_test(test_detects_wrong_values),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated_and_corrupted),
    };
    return cmocka_run_group_tests_name("golden_sched", tests, NULL, NULL);
}
