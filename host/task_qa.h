/* task_qa.h: the question-answering evaluation (PAPER.md §6 TriviaQA prompt) as a library call,
 * shared by `eval --task qa` and `run`. */
#ifndef HP_TASK_QA_H
#define HP_TASK_QA_H

#include "eval_report.h"
#include "model.h"

#include <stdint.h>

typedef struct hp_qa_task {
    const char *model_path;  /* named in the reports */
    const char *data;        /* QA JSONL or TriviaQA JSON (test split) */
    const char *ranking;     /* ranking JSON; NULL: the unedited model only (DIR/baseline.json) */
    const char *countries;   /* word list marking country questions, or NULL */
    const char *outdir;      /* DIR: eval.json, eval.csv, SVGs, runs/ (checkpoints) */
    int ks[HP_EVAL_MAX_K], nk;
    float alpha;
    int n_random, max_new, limit, batch, chat, quiet, max_prompt;
    uint64_t seed;
    const char *fingerprint; /* more of what decides the results (run: its stage key), or NULL */
    const char *checkpoint_dir; /* finished configurations (default DIR/runs) */
} hp_qa_task;

/* Answers, scores and writes the reports; 0, or -1 with e set. */
int hp_task_qa(hp_model *m, const hp_qa_task *t, hp_err *e);

#endif
