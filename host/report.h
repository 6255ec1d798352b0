/* report.h: the one report of `run`: OUT/report.md (figures linked) and OUT/report.html
 * (self-contained: every figure embedded), from the outputs the stages wrote. */
#ifndef HP_REPORT_H
#define HP_REPORT_H

#include "model.h"
#include "runner.h"

struct cJSON;

/* log: the run's stage list (run_log.json's form) for the timings table. */
int hp_report_write(const hp_experiment *x, const hp_model *m, const struct cJSON *log, hp_err *e);

#endif
