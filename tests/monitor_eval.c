/*
 * monitor_eval: the monitor's verdicts on labelled curve directories (a
 * labels.tsv and one curve per file), as a confusion matrix, with the false
 * alarms and the misjudged curves. It produced the tables of docs/monitor.md:
 *
 *   monitor_eval [--set SPEC] [--view VIEW] [--verbose] DIR...
 *
 * VIEW turns each full curve into the kind of log real tools write (the label
 * stays that of the full curve): "every:K" keeps every K-th observation (a log
 * every K iterations), "mean:K" the means of blocks of K (per-epoch averages),
 * "scale:F" every loss times F, "noise:S:SEED" multiplicative log-normal noise
 * of sd S, "head:N" the first N observations, "from:N" the curve from observation N on
 * (an excerpt that starts mid-run). --initial gives the monitor the task's
 * untrained level as initial_loss (what --initial-loss or --classes do).
 *
 * The verdict is the one sgd_monitor_finish() gives at the end of the curve
 * (--running: the running verdict after the last observation, without it).
 *
 * A false alarm is a divergence or an oscillation event on a curve labelled
 * healthy. SPDX-License-Identifier: MIT
 */
#include "monitor_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *set = NULL, *view = NULL;
    bool verbose = false, initial = false;
    int first_dir = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            set = argv[++i];
        } else if (strcmp(argv[i], "--view") == 0 && i + 1 < argc) {
            view = argv[++i];
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(argv[i], "--running") == 0) {
            meval_finish = false;
        } else if (strcmp(argv[i], "--initial") == 0) {
            initial = true;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: monitor_eval [--set SPEC] [--view VIEW] [--initial] [--running] [--verbose] DIR...\n");
            return 2;
        } else {
            first_dir = i;
            break;
        }
    }
    if (first_dir >= argc) {
        fprintf(stderr, "usage: monitor_eval [--set SPEC] [--view VIEW] [--initial] [--running] [--verbose] DIR...\n");
        return 2;
    }
    meval_result total;
    meval_init(&total);
    for (int i = first_dir; i < argc; i++) {
        meval_result r;
        meval_init(&r);
        if (!meval_dir(argv[i], set, view, initial, verbose ? stdout : NULL, &r))
            return 2;
        printf("%s%s%s:\n", argv[i], view ? " view " : "", view ? view : "");
        meval_print(&r, stdout);
        meval_add(&total, &r);
    }
    if (argc - first_dir > 1) {
        printf("all:\n");
        meval_print(&total, stdout);
    }
    return 0;
}
