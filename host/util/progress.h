/* progress.h: progress bars on stderr (rate and ETA). On a terminal the bar redraws in place; in
 * a log it prints a line at most every few seconds. */
#ifndef HP_PROGRESS_H
#define HP_PROGRESS_H

typedef struct hp_progress {
    const char *label, *unit;
    long total, done;
    double t0, last;
    int enabled, tty;
} hp_progress;

void hp_progress_start(hp_progress *p, const char *label, long total, const char *unit, int enabled);
void hp_progress_update(hp_progress *p, long done);
void hp_progress_end(hp_progress *p);
double hp_now(void);

#endif
