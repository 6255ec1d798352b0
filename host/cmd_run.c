/* cmd_run.c: `run EXPERIMENT.json`: options, then hp_run_experiment (host/runner.h). */
#include "cli.h"
#include "commands.h"
#include "runner.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

enum { RUN_FORCE = 5000, RUN_DEVICE, RUN_DRY, RUN_QUIET, RUN_HELP };

static void help(void) {
    printf("usage: headpursuit run EXPERIMENT.json [--force STAGE]... [--device D] [--dry-run] [--quiet]\n"
           "Runs the experiment a JSON file describes, as stages whose results are kept under its output\n"
           "folder and reused while their inputs are unchanged:\n"
           "  reps             head representations over the train split (OUT/reps.safetensors)\n"
           "  rank:CONCEPT     SOMP + Logit-Lens ranking (OUT/rank/CONCEPT.json/.csv/.heatmap.svg)\n"
           "  sweep:TASK:alphaA  the edit sweep: unedited, top-k SOMP, top-k Logit-Lens, random heads\n"
           "                   (OUT/tasks/TASK/alphaA/eval.json/.csv/SVGs; each finished configuration\n"
           "                   is kept in OUT/tasks/TASK/runs/, so a killed sweep resumes)\n"
           "  report           OUT/report.md and OUT/report.html (self-contained)\n"
           "Each stage's key hashes its inputs (model identity, data and word-list contents, options,\n"
           "the stage's version); OUT/.stages/ records each finished stage's outputs with their sizes\n"
           "and hashes, so a truncated or corrupt output is recomputed, never trusted. OUT/run_log.json\n"
           "says, per stage, computed or cached and how long it took.\n"
           "  --force STAGE    recompute a stage (a name above, or reps, rank, sweep, report for all of\n"
           "                   that kind) and every stage after it that depends on it\n"
           "  --device D       auto, cpu or cuda (overrides the file's device)\n"
           "  --dry-run        say which stages would run, compute nothing, write nothing\n"
           "  --quiet          no progress output\n\n");
    hp_experiment_help(stdout);
    printf("\nExamples: experiments/*.json (README lists them).\n");
}

int cmd_run(int argc, char **argv) {
    static const struct option lo[] = {{"force", required_argument, 0, RUN_FORCE},
                                       {"device", required_argument, 0, RUN_DEVICE},
                                       {"dry-run", no_argument, 0, RUN_DRY},
                                       {"quiet", no_argument, 0, RUN_QUIET},
                                       {"help", no_argument, 0, RUN_HELP},
                                       {0}};
    hp_run_opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case RUN_FORCE:
            if (o.n_force == (int)(sizeof o.force / sizeof *o.force)) {
                fprintf(stderr, "headpursuit run: at most %d --force options\n", o.n_force);
                return 2;
            }
            if (strcmp(optarg, "reps") && strcmp(optarg, "rank") && strcmp(optarg, "sweep") &&
                strcmp(optarg, "report") && strncmp(optarg, "rank:", 5) && strncmp(optarg, "sweep:", 6)) {
                fprintf(stderr, "headpursuit run: --force '%s': expected reps, rank, sweep, report, rank:CONCEPT "
                                "or sweep:TASK[:alphaA]\n", optarg);
                return 2;
            }
            o.force[o.n_force++] = optarg;
            break;
        case RUN_DEVICE:
            if (strcmp(optarg, "auto") && strcmp(optarg, "cpu") && strcmp(optarg, "cuda")) {
                fprintf(stderr, "headpursuit run: --device '%s': expected auto, cpu or cuda\n", optarg);
                return 2;
            }
            o.device = optarg;
            break;
        case RUN_DRY: o.dry_run = 1; break;
        case RUN_QUIET: o.quiet = 1; break;
        case RUN_HELP: help(); return 0;
        default: return hp_opt_unknown("run");
        }
    }
    if (hp_opt_one_arg("run", "EXPERIMENT.json", argc, argv)) return 2;
    hp_err e = {0};
    hp_experiment x;
    if (hp_experiment_load(argv[optind], &x, &e)) return hp_cli_fail(&e);
    int rc = hp_run_experiment(&x, &o, &e) ? hp_cli_fail(&e) : 0;
    hp_experiment_free(&x);
    return rc;
}
