/* plot.h: small dependency-free SVG figures for the experiments: a line chart of a score
 * against the number of edited heads (with optional shaded bands, e.g. the random-control
 * IQR) and a layers × heads heatmap with a colour bar and outlined selected heads.
 * Files are written atomically (hp_write_file_atomic). */
#ifndef HP_PLOT_H
#define HP_PLOT_H

#include "common.h"

typedef struct hp_plot_series {
    const char *name;      /* legend text (UTF-8) */
    const double *y;       /* n_x values; NaN leaves a gap */
    const double *lo, *hi; /* optional band, n_x values each (both or neither); NaN = gap */
    const char *color;     /* "#rrggbb", or NULL for the next palette colour */
    int dashed;            /* draw the line dashed (e.g. the "other questions" series) */
    int marker;            /* point marker: 0 circle, 1 square, 2 triangle, 3 diamond */
} hp_plot_series;

/* Series are drawn in reverse order, so the first one (the method) lies on top of the controls
 * that follow it. A series that has the same value as one drawn over it (at every x, or at some)
 * gets a note under the legend saying so, since its line is hidden there. */

typedef struct hp_line_chart {
    const char *title, *xlabel, *ylabel; /* any may be NULL */
    const double *x;                     /* n_x increasing values (e.g. k = 8, 16, 32) */
    int n_x;
    const hp_plot_series *series;
    int n_series;
    int log2_x;        /* x on a log2 axis (k doubling), ticks at the data's x values */
    double ymin, ymax; /* NaN: from the data, padded */
    double hline;      /* NaN: none; else a thin dotted reference line (1.0 = unedited) */
} hp_line_chart;

int hp_plot_line_svg(const char *path, const hp_line_chart *c, hp_err *e);

typedef struct hp_heatmap {
    const char *title, *xlabel, *ylabel, *colorbar_label; /* any may be NULL */
    const float *values;             /* rows × cols, row-major: values[l*cols + h]; NaN: grey */
    int rows, cols;                  /* layers L (y axis, layer 0 at the top), heads H (x) */
    const unsigned char *highlight;  /* rows × cols flags, or NULL: nonzero cells are outlined */
    double vmin, vmax;               /* NaN: from the data */
    const char *subtitle;            /* a smaller second title line (settings), or NULL */
} hp_heatmap;

int hp_plot_heatmap_svg(const char *path, const hp_heatmap *h, hp_err *e);

/* The viridis colour map at t in [0, 1] (clamped; NaN gives grey), interpolated linearly in
 * sRGB between 11 anchors taken from matplotlib's viridis. */
void hp_viridis(double t, unsigned char rgb[3]);

#endif
