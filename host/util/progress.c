/* progress.c: progress bars on stderr. */
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double hp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void hp_progress_start(hp_progress *p, const char *label, long total, const char *unit, int enabled) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->t0 = p->last = hp_now();
    p->enabled = enabled;
    p->tty = isatty(2);
}

static void draw(hp_progress *p, int final) {
    double el = hp_now() - p->t0, rate = el > 0 ? p->done / el : 0;
    double eta = rate > 0 ? (p->total - p->done) / rate : 0;
    int width = 24, fill = p->total > 0 ? (int)(width * (double)p->done / p->total) : width;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "%s%-10s [%s] %ld/%ld %s  %.2f %s/s  %s %.0fs%s", p->tty ? "\r" : "", p->label,
            bar, p->done, p->total, p->unit, rate, p->unit, final ? "took" : "ETA",
            final ? el : eta, (p->tty && !final) ? "" : "\n");
    fflush(stderr);
}

void hp_progress_update(hp_progress *p, long done) {
    p->done = done;
    if (!p->enabled || done >= p->total) return; /* the final line is hp_progress_end's */
    double now = hp_now();
    if (now - p->last < (p->tty ? 0.2 : 5.0)) return;
    p->last = now;
    draw(p, 0);
}

void hp_progress_end(hp_progress *p) {
    if (p->enabled) draw(p, 1);
}
