/*
 * What the case studies share (sgdlab case image, cmd_case.c; sgdlab case
 * text, cmd_case_text.c). Both tell the seed article's story with the same
 * four trials (a rate too high, a lower rate, a decaying schedule, the guard)
 * and report them alike; this file owns that common part: a trial's record
 * (its loss curve, the monitor's and the guard's events, verdict and first
 * alarm), running the trials side by side on threads under one progress bar,
 * the plot's curves and legend of marks, the table's common columns, the
 * story's closing lines and the JSON fields every trial has. Each command
 * keeps its data, its model, its trials' definitions, its own metrics (what
 * it evaluates after a trial, through on_done), its own table columns, JSON
 * fields and plot scale.
 * SPDX-License-Identifier: MIT
 */
#ifndef SGDLAB_TOOL_CASE_RUN_H
#define SGDLAB_TOOL_CASE_RUN_H

#include "cli.h"

/* The trials, in the order of the story (and of the table, the JSON and the plot). */
enum { CASE_HIGH = 0, CASE_LOW = 1, CASE_SCHED = 2, CASE_GUARD = 3, CASE_TRIALS = 4 };

typedef struct case_event {
    int64_t step;
    int32_t kind; /* a monitor kind, or -1 for a rescue of the guard */
    double loss, lr;
} case_event;

typedef struct case_trial {
    /* the definition: case_trial_init, then the command's optimizer and schedule */
    const char *name;
    char optim[128], sched[512], sched_text[64]; /* sched: "constant" unless the command says otherwise */
    double lr;
    double clip; /* the trainer's clip_norm (-1, the default: the optimizer's own) */
    bool guard;
    int64_t epochs, steps_planned;
    /* the results */
    double *loss; /* the training loss of step k at loss[k - 1]; NaN for a step not taken */
    int64_t n_loss;
    case_event *events;
    size_t n_events, cap_events;
    int32_t verdict;
    int64_t steps, rescues, first_alarm; /* first_alarm: the step of the first alarm, or -1 */
    int32_t first_kind;
    double seconds, final_lr;
    sgd_status status;
    char error[512];
    /* the run's objects: alive in on_done, and until case_trials_free with case_run_options.keep */
    sgd_model *model;
    sgd_optim *optim_obj;
    sgd_sched *sched_obj;
    sgd_monitor *monitor;
    sgd_trainer *trainer;
} case_trial;

/*
 * Sets up a trial: its name, rate, guard, epochs and planned steps, a constant
 * schedule, no alarm yet, and its loss curve (all NaN). False when out of memory.
 */
bool case_trial_init(case_trial *t, const char *name, double lr, bool guard, int64_t epochs, int64_t steps_planned);
/* Frees what the trials hold (curves, events, kept objects); the array itself is the caller's. */
void case_trials_free(case_trial *trials);

/* How the trials run. */
typedef struct case_run_options {
    const char *model; /* the spec every trial builds */
    uint64_t seed;     /* the model's and the trainer's */
    const sgd_dataset *train, *val; /* val: the trainer's validation set, or NULL */
    /*
     * The trainer options every trial shares (batch_size, shuffle,
     * guard_factor...); case_run sets each trial's epochs, guard and
     * clip_norm, the seed and progress_interval 1. The models' max_batch is
     * batch_size.
     */
    sgd_trainer_options trainer;
    int64_t threads;  /* trials at once (case_default_threads) */
    int bar_every;    /* steps between redraws of the progress bar */
    bool progress;    /* draw the progress bar (cli_progress_on) */
    bool keep;        /* keep each trial's objects until case_trials_free */
    /* Called in the trial's thread when it trained (status SGD_OK or SGD_EDIVERGED): its own measures. */
    void (*on_done)(case_trial *t, int i, void *user);
    void *user;
} case_run_options;

/*
 * The end of a case's table of options: --plot FILE (default_file unless
 * --no-plot), --no-plot, --json, -o, -q (quiet_help), --progress, CLI_END.
 */
#define CASE_OPTS_OUTPUT_END(cl, plot, plot_default, default_file, quiet_help)                                         \
    {.name = "plot", .kind = CLI_CALL, .dest = (plot), .arg = "FILE", .takes_value = true, .call = cli_plot_option,   \
     .help = "the loss curves, FILE.svg or FILE.png (default " default_file "; needs gnuplot: gnuplot-nox)"},          \
        {.name = "no-plot", .kind = CLI_CALL, .dest = (plot_default), .call = cli_plot_option, .help = "no plot"},     \
        CLI_OPT_JSON(cl, "one JSON object instead of the table (docs/cli.md)"), CLI_OPT_OUTPUT(cl),                   \
        CLI_OPT_QUIET(cl, quiet_help), CLI_OPT_PROGRESS(cl), CLI_END

/* Whether gnuplot is there to draw the plot (true without one); says so when the plot was asked for. */
bool case_can_plot(const cli *cl, const char *plot, bool plot_given);
/* --threads N, whose default is case_default_threads(): the number of cores, at most the number of trials. */
#define CASE_OPT_THREADS(var)                                                                                          \
    {.name = "threads", .kind = CLI_INT, .dest = (var), .ilo = 1, .ihi = 64, .arg = "N",                             \
     .help = "trials at once (default: the number of cores, at most 4)"}
int64_t case_default_threads(void);
/* Runs the trials, the longest (the schedule's) first; returns when all have ended. */
void case_run(const case_run_options *o, case_trial *trials);
/* True when every trial ran (trained, or diverged); else says which did not, and why. */
bool case_all_ran(const cli *cl, const case_trial *trials);

/* The verdict in words: the monitor's, or "failed" for a trial that did not run. */
const char *case_verdict(const case_trial *t);
/* The too-high trial is in trouble: stopped as diverged, or a verdict of diverged or unstable. */
bool case_in_trouble(const case_trial *t);
/* A trial that ended well, with a healthy verdict. */
bool case_healthy(const case_trial *t);

/* ------------------------------------------------------------ the table and the story */

/* The widths of the table's columns that differ between the cases. */
typedef struct case_table {
    int name, sched, alarm;
} case_table;

/*
 * The heading and the rows: trial, lr, schedule, guard, verdict, first
 * alarm, `own` (the command's columns, formatted), steps, rescues, time.
 */
void case_table_head(const case_table *w, const char *own);
void case_table_row(const case_table *w, const case_trial *t, const char *own);
/* The too-high trial's line and the guard's ("the guard rescued the same rate N times<how>: ..."). */
void case_print_story(const case_trial *trials, const char *how);
/* The plot's line and the time's. */
void case_print_end(const char *plot, bool plotted, bool have_gnuplot, double seconds, double data_seconds);

/* ------------------------------------------------------------ JSON */

/* {"schema":..,"command":"case","case":..,"model":..,"data":.. (the command goes on with its own fields). */
void case_json_begin(const char *schema, const char *name, const char *model, const char *data);
/* A trial's {"name","optimizer","schedule","lr" */
void case_json_trial_begin(const case_trial *t);
/* ,"verdict","diverged","first_alarm","first_alarm_kind","events" (each event's lr if with_lr) */
void case_json_trial_alarms(const case_trial *t, bool with_lr);
/* ,"steps","rescues","final_lr","seconds" (the command closes the object) */
void case_json_trial_end(const case_trial *t);
/* ],"story_holds": (after the trials) */
void case_json_story(bool holds);
/* ,"plot","seconds"} and the newline */
void case_json_end(const char *plot, bool plotted, double seconds);

/* ------------------------------------------------------------ the plot */

/* A kind of mark on the curves, in the legend when there is one (or always). */
typedef struct case_mark_class {
    const char *point, *color, *title; /* gnuplot's point type, the legend's colour, its title */
    bool always;
} case_mark_class;

#define CASE_MARK_CLASSES 4

/* How a case draws its plot. */
typedef struct case_plot_style {
    case_mark_class marks[CASE_MARK_CLASSES];
    int n_marks;
    int digits; /* of the marks' values in their data file */
    /* Writes a trial's curve ("step value" lines) into f; user: case_plot_begin's, for the scale. */
    void (*curve)(FILE *f, const case_trial *t, void *user);
} case_plot_style;

/*
 * The plot of the trials' loss curves: case_plot_begin writes each curve
 * (style->curve), the command its marks (case_plot_mark) and the start of
 * the script (title, axes, "plot "); case_plot_finish adds the curves, the
 * legend of the marks, and draws.
 */
typedef struct case_plot {
    cli_plot p;
    const cli *cl;
    const case_plot_style *style;
    FILE *marks;
    size_t count[CASE_MARK_CLASSES];
    char extra[CASE_TRIALS][32]; /* the end of each curve's label (the command's measure), "" by default */
} case_plot;

/* Starts the plot, writes the curves and opens the marks' file; false when it cannot (said so). */
bool case_plot_begin(case_plot *cp, const cli *cl, const case_plot_style *style, const case_trial *trials, void *user);
/* A mark of class cls at (x, y) in trial i's colour. */
void case_plot_mark(case_plot *cp, int i, int64_t x, double y, int cls);
/*
 * Appends to script (w characters written so far) the curves, labelled
 * "NAME (lr LR, SCHEDULE[, guard]): VERDICT<cp->extra[i]>", and the marks'
 * legend; draws into path and ends the plot.
 */
bool case_plot_finish(case_plot *cp, char *script, size_t cap, int w, const case_trial *trials, const char *path);

#endif
