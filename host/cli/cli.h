/* cli.h: helpers shared by the subcommands: model opening on a backend, id lists, head lists,
 * checked option values. */
#ifndef HP_CLI_H
#define HP_CLI_H

#include "model.h"
#include "prompts.h"

/* Opens the backend named by device ("auto", "cpu", "cuda") and loads the model; logs one
 * line on stderr unless quiet. */
hp_model *hp_cli_open(const char *path, const char *device, int quiet, hp_err *e);
/* Set by `--weights-f32` (any command; main.c): hp_cli_open converts every weight to the
 * backend's weight type (float32 on the CPU) instead of keeping GGUF block types. */
extern int hp_cli_weights_f32;
void hp_cli_close(hp_model *m);

/* "3.1,12.7" (layer.head) with factor alpha applied to the model. */
int hp_cli_apply_heads(hp_model *m, const char *list, float alpha, hp_err *e);

/* Checked option values: on a bad value each prints "headpursuit CMD: OPT 'VAL': expected ..."
 * (the option, the value and what is allowed) and returns -1; the caller exits with 2.
 * hp_opt_int: a whole decimal number in [lo, hi]. hp_opt_float: a finite number in [lo, hi].
 * hp_opt_u64: a non-negative whole number (seeds). */
int hp_opt_int(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out);
int hp_opt_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out);
int hp_opt_u64(const char *cmd, const char *opt, const char *val, unsigned long long *out);
/* After getopt has reported an unknown option or a missing argument: adds the --help hint and
 * returns 2 (the exit code). */
int hp_opt_unknown(const char *cmd);
/* After option parsing: exactly one positional argument (what: "MODEL") at argv[optind]; else
 * prints what is missing or which argument is extra and returns -1. */
int hp_opt_one_arg(const char *cmd, const char *what, int argc, char **argv);
/* An input file named by an option, checked before any model is loaded: it must exist, be a
 * regular file (or a directory when dir_ok) and be readable. Prints "headpursuit CMD: OPT
 * 'PATH': <why>" and returns -1 when not. */
int hp_opt_input(const char *cmd, const char *opt, const char *path, int dir_ok);
/* Input files read in full before any model loads, so that a bad one fails in a second rather
 * than after the capture: a QA file (JSONL or TriviaQA JSON, at least one question) and a word
 * list (at least one word). Print "headpursuit CMD: OPT: <why>" and return -1 when bad. */
int hp_opt_qa_file(const char *cmd, const char *opt, const char *path);
int hp_opt_words_file(const char *cmd, const char *opt, const char *path);

/* Prints an error as "headpursuit: <msg>" and returns 1 (the exit code). */
int hp_cli_fail(const hp_err *e);

#endif
