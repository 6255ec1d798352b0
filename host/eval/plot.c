/* plot.c: SVG line charts and heatmaps, built in memory and written atomically. Text widths
 * are estimated (0.6 em a character) because there is no font engine here; layouts leave
 * slack for that. */
#include "plot.h"
#include "fileio.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define FONT "DejaVu Sans, Helvetica, Arial, sans-serif"

/* ---- growable text buffer ------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 8192;
        while (nc < b->n + (size_t)k + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

/* Appends s with XML's special characters escaped; control characters (invalid in XML 1.0)
 * are dropped. */
static void sb_text(sbuf *b, const char *s) {
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        switch (*c) {
        case '&': sb_printf(b, "&amp;"); break;
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        case '\'': sb_printf(b, "&apos;"); break;
        default:
            if (*c >= 0x20 || *c == '\t' || *c == '\n') sb_printf(b, "%c", *c);
        }
    }
}

static int sb_finish(sbuf *b, const char *path, hp_err *e) {
    int rc;
    if (b->oom) rc = hp_errf(e, "%s: out of memory building the SVG", path);
    else rc = hp_write_file_atomic(path, b->p, b->n, e);
    free(b->p);
    return rc;
}

/* Characters (UTF-8 code points) in s, for width estimates. */
static int text_chars(const char *s) {
    int n = 0;
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) n += (*c & 0xc0) != 0x80;
    return n;
}

static void svg_open(sbuf *b, double w, double h) {
    sb_printf(b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
              "viewBox=\"0 0 %.0f %.0f\" font-family=\"%s\">\n"
              "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              w, h, w, h, FONT);
}

static void text_el(sbuf *b, double x, double y, const char *anchor, double size,
                    const char *extra, const char *s) {
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%.0f\"%s%s>", x, y,
              anchor, size, extra ? " " : "", extra ? extra : "");
    sb_text(b, s);
    sb_printf(b, "</text>\n");
}

/* ---- ticks --------------------------------------------------------------------------------- */

/* A 1-2-5 step giving about `want` intervals over span. */
static double nice_step(double span, int want) {
    double raw = span / want, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

/* Decimals that print every multiple of step exactly (0.25 -> 2, 5 -> 0). */
static int step_decimals(double step) {
    for (int d = 0; d < 6; d++) {
        double s = step * pow(10.0, d);
        if (fabs(s - round(s)) < 1e-6 * s) return d;
    }
    return 6;
}

static int is_hex_color(const char *c) {
    if (!c || c[0] != '#' || strlen(c) != 7) return 0;
    for (int i = 1; i < 7; i++)
        if (!strchr("0123456789abcdefABCDEF", c[i])) return 0;
    return 1;
}

/* Tableau-10 order: distinct hues that survive grey-scale printing reasonably. */
static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* ---- line chart ---------------------------------------------------------------------------- */

/* One point marker (hp_plot_series.marker) at (x, y), filled, with a white rim. */
static void marker_el(sbuf *b, int kind, double x, double y, const char *color) {
    const char *rim = "stroke=\"white\" stroke-width=\"1\"";
    switch (kind) {
    case 1:
        sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"8.4\" height=\"8.4\" fill=\"%s\" %s/>\n", x - 4.2,
                  y - 4.2, color, rim);
        break;
    case 2:
        sb_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\" %s/>\n", x, y - 6, x + 5.6, y + 4,
                  x - 5.6, y + 4, color, rim);
        break;
    case 3:
        sb_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\" %s/>\n", x, y - 5.5,
                  x + 5.5, y, x, y + 5.5, x - 5.5, y, color, rim);
        break;
    default:
        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.6\" fill=\"%s\" %s/>\n", x, y, color, rim);
    }
}

/* Where series s has the same value as a series drawn over it (an earlier one): that series
 * (one equal at every x first, else the one equal at most x), and the x values, as text "at
 * every k" / "at k = 4, 8". -1 when nowhere. */
static int overlap_of(const hp_line_chart *c, int s, double tol, char *where, size_t n) {
    const double *a = c->series[s].y;
    int best = -1, best_hit = 0, finite = 0;
    for (int i = 0; i < c->n_x; i++) finite += isfinite(a[i]) != 0;
    for (int t = 0; t < s; t++) {
        int hit = 0;
        for (int i = 0; i < c->n_x; i++)
            hit += isfinite(a[i]) && isfinite(c->series[t].y[i]) && fabs(a[i] - c->series[t].y[i]) <= tol;
        if (hit > best_hit) best = t, best_hit = hit;
    }
    if (best < 0) return -1;
    if (best_hit == finite) {
        snprintf(where, n, "at every k");
        return best;
    }
    size_t w = (size_t)snprintf(where, n, "at k =");
    for (int i = 0, hit = 0; i < c->n_x; i++) {
        const double o = c->series[best].y[i];
        if (isfinite(a[i]) && isfinite(o) && fabs(a[i] - o) <= tol && w < n)
            w += (size_t)snprintf(where + w, n - w, "%s %g", hit++ ? "," : "", c->x[i]);
    }
    return best;
}

int hp_plot_line_svg(const char *path, const hp_line_chart *c, hp_err *e) {
    if (c->n_x < 1 || !c->x) return hp_errf(e, "%s: line chart needs at least one x value", path);
    if (c->n_series < 1 || !c->series) return hp_errf(e, "%s: line chart has no series", path);
    for (int i = 0; i < c->n_x; i++) {
        if (!isfinite(c->x[i]) || (c->log2_x && c->x[i] <= 0))
            return hp_errf(e, "%s: x[%d] = %g is not usable%s", path, i, c->x[i],
                           c->log2_x ? " on a log2 axis" : "");
        if (i && c->x[i] <= c->x[i - 1]) return hp_errf(e, "%s: x values must increase", path);
    }
    const char *colors[64];
    if (c->n_series > 64) return hp_errf(e, "%s: more than 64 series", path);
    int next_color = 0, name_chars = 0;
    double ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < c->n_series; s++) {
        const hp_plot_series *se = &c->series[s];
        if (!se->y) return hp_errf(e, "%s: series %d has no y values", path, s);
        if (!se->lo != !se->hi) return hp_errf(e, "%s: series %d: give both lo and hi", path, s);
        if (se->color && !is_hex_color(se->color))
            return hp_errf(e, "%s: series %d: colour \"%.16s\" is not #rrggbb", path, s, se->color);
        colors[s] = se->color ? se->color : palette[next_color++ % 10];
        if (text_chars(se->name) > name_chars) name_chars = text_chars(se->name);
        for (int i = 0; i < c->n_x; i++) {
            const double v[3] = {se->y[i], se->lo ? se->lo[i] : NAN, se->hi ? se->hi[i] : NAN};
            for (int k = 0; k < 3; k++)
                if (isfinite(v[k])) ylo = fmin(ylo, v[k]), yhi = fmax(yhi, v[k]);
        }
    }
    if (isfinite(c->hline)) ylo = fmin(ylo, c->hline), yhi = fmax(yhi, c->hline);
    if (!isfinite(ylo)) ylo = 0.0, yhi = 1.0; /* all NaN: draw empty axes */
    if (yhi - ylo < 1e-12) ylo -= 0.5, yhi += 0.5;
    double step = nice_step(yhi - ylo, 5);
    ylo = floor(ylo / step + 1e-9) * step;
    yhi = ceil(yhi / step - 1e-9) * step;
    if (isfinite(c->ymin)) ylo = c->ymin;
    if (isfinite(c->ymax)) yhi = c->ymax;
    if (!(yhi > ylo)) return hp_errf(e, "%s: empty y range [%g, %g]", path, ylo, yhi);
    step = nice_step(yhi - ylo, 5);

    /* Overlap notes for the legend: "<hidden series>" / "= <series over it> <where>" (indented). */
    char notes[64][2][200];
    int n_notes = 0;
    for (int s = 1; s < c->n_series; s++) {
        char where[96];
        int t = overlap_of(c, s, 1e-9 * (yhi - ylo), where, sizeof where);
        if (t < 0) continue;
        snprintf(notes[n_notes][0], sizeof notes[0][0], "%s", c->series[s].name ? c->series[s].name : "");
        snprintf(notes[n_notes][1], sizeof notes[0][1], "= %s %s", c->series[t].name ? c->series[t].name : "",
                 where);
        for (int k = 0; k < 2; k++)
            if (text_chars(notes[n_notes][k]) + 2 > name_chars) name_chars = text_chars(notes[n_notes][k]) + 2;
        n_notes++;
    }

    const double W_plot = 520, H_plot = 320;
    const double ml = 78, mt = c->title ? 52 : 24, mb = 62;
    const double legend_w = 56 + 0.55 * 13 * name_chars;
    double W = ml + W_plot + 24 + legend_w + 12;
    const double legend_h = 8 + 22 * c->n_series + (n_notes ? 26 + 32 * n_notes : 0);
    const double H = mt + fmax(H_plot + mb, legend_h + 8);
    if (c->title) W = fmax(W, 0.6 * 17 * text_chars(c->title) + 24);
    const double x0 = ml, x1 = ml + W_plot, y0 = mt, y1 = mt + H_plot;

    double xa = c->log2_x ? log2(c->x[0]) : c->x[0];
    double xb = c->log2_x ? log2(c->x[c->n_x - 1]) : c->x[c->n_x - 1];
    double pad = c->n_x > 1 ? 0.06 * (xb - xa) : 1.0;
    xa -= pad, xb += pad;
#define PX(v) (x0 + ((c->log2_x ? log2(v) : (v)) - xa) / (xb - xa) * (x1 - x0))
#define PY(v) (y1 - ((v) - ylo) / (yhi - ylo) * (y1 - y0))

    sbuf b = {0};
    svg_open(&b, W, H);
    /* Left-aligned at the plot's edge: a centred long title would run off the canvas. */
    if (c->title) text_el(&b, 12, 30, "start", 17, "font-weight=\"bold\"", c->title);

    /* Grid and y ticks. */
    int dec = step_decimals(step);
    sb_printf(&b, "<g font-size=\"12\" fill=\"#333\">\n");
    for (double t = ceil(ylo / step - 1e-9) * step; t <= yhi + 1e-9 * step; t += step) {
        double py = PY(t);
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
                  x0, py, x1, py);
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", x0 - 7,
                  py + 4, dec, fabs(t) < 1e-12 * step ? 0.0 : t);
    }
    /* x ticks: at the data's x values when there are few (k = 8, 16, 32), else 1-2-5 steps. */
    if (c->n_x <= 12 || c->log2_x) {
        for (int i = 0; i < c->n_x; i++) {
            double px = PX(c->x[i]);
            sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                      px, y1, px, y1 + 5);
            sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", px,
                      y1 + 19, c->x[i]);
        }
    } else {
        double xs = nice_step(c->x[c->n_x - 1] - c->x[0], 6);
        int xd = step_decimals(xs);
        for (double t = ceil((xa) / xs - 1e-9) * xs; t <= xb + 1e-9 * xs; t += xs) {
            double px = PX(t);
            sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                      px, y1, px, y1 + 5);
            sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f</text>\n", px,
                      y1 + 19, xd, t);
        }
    }
    sb_printf(&b, "</g>\n");
    sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                  "stroke=\"#555\"/>\n", x0, y0, x1 - x0, y1 - y0);
    if (c->xlabel) text_el(&b, (x0 + x1) / 2, y1 + 46, "middle", 14, NULL, c->xlabel);
    if (c->ylabel) {
        char rot[96];
        snprintf(rot, sizeof rot, "transform=\"rotate(-90 %.1f %.1f)\"", 24.0, (y0 + y1) / 2);
        text_el(&b, 24, (y0 + y1) / 2, "middle", 14, rot, c->ylabel);
    }
    if (isfinite(c->hline) && c->hline >= ylo && c->hline <= yhi)
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
                      "stroke-dasharray=\"2 3\"/>\n", x0, PY(c->hline), x1, PY(c->hline));

    /* Clip to the plot area (plus a marker's size, so points on the edge show whole) so values
     * outside a fixed y range do not spill over the axes. */
    sb_printf(&b, "<clipPath id=\"plotarea\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                  "height=\"%.1f\"/></clipPath>\n<g clip-path=\"url(#plotarea)\">\n",
              x0, y0 - 7, x1 - x0, y1 - y0 + 14);
    /* Bands first, under every line. A band is drawn over each run of finite lo/hi. */
    for (int s = 0; s < c->n_series; s++) {
        const hp_plot_series *se = &c->series[s];
        if (!se->lo) continue;
        for (int i = 0; i < c->n_x;) {
            if (!isfinite(se->lo[i]) || !isfinite(se->hi[i])) {
                i++;
                continue;
            }
            int j = i;
            while (j + 1 < c->n_x && isfinite(se->lo[j + 1]) && isfinite(se->hi[j + 1])) j++;
            sb_printf(&b, "<path fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" d=\"", colors[s]);
            if (i == j) { /* one point: a short vertical bar */
                double px = PX(c->x[i]);
                sb_printf(&b, "M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ", px - 4, PY(se->hi[i]),
                          px + 4, PY(se->hi[i]), px + 4, PY(se->lo[i]), px - 4, PY(se->lo[i]));
            } else {
                for (int k = i; k <= j; k++)
                    sb_printf(&b, "%c%.1f %.1f", k == i ? 'M' : 'L', PX(c->x[k]), PY(se->hi[k]));
                for (int k = j; k >= i; k--) sb_printf(&b, "L%.1f %.1f", PX(c->x[k]), PY(se->lo[k]));
                sb_printf(&b, "Z");
            }
            sb_printf(&b, "\"/>\n");
            i = j + 1;
        }
    }
    for (int s = c->n_series - 1; s >= 0; s--) { /* the first series last: on top */
        const hp_plot_series *se = &c->series[s];
        sb_printf(&b, "<g>\n<title>");
        sb_text(&b, se->name);
        sb_printf(&b, "</title>\n<path fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" "
                      "stroke-linejoin=\"round\"%s d=\"", colors[s],
                  se->dashed ? " stroke-dasharray=\"7 4\"" : "");
        int pen = 0;
        for (int i = 0; i < c->n_x; i++) {
            if (!isfinite(se->y[i])) {
                pen = 0;
                continue;
            }
            sb_printf(&b, "%c%.1f %.1f", pen ? 'L' : 'M', PX(c->x[i]), PY(se->y[i]));
            pen = 1;
        }
        sb_printf(&b, "\"/>\n");
        for (int i = 0; i < c->n_x; i++)
            if (isfinite(se->y[i])) marker_el(&b, se->marker, PX(c->x[i]), PY(se->y[i]), colors[s]);
        sb_printf(&b, "</g>\n");
    }
    sb_printf(&b, "</g>\n");
#undef PX
#undef PY

    /* Legend, outside the plot on the right so it never hides data. */
    double lx = x1 + 24, ly = y0 + 8;
    for (int s = 0; s < c->n_series; s++) {
        const hp_plot_series *se = &c->series[s];
        double cy = ly + 22 * s + 8;
        if (se->lo)
            sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"34\" height=\"14\" fill=\"%s\" "
                          "fill-opacity=\"0.18\"/>\n", lx, cy - 7, colors[s]);
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"2.2\"%s/>\n", lx, cy, lx + 34, cy, colors[s],
                  se->dashed ? " stroke-dasharray=\"7 4\"" : "");
        marker_el(&b, se->marker, lx + 17, cy, colors[s]);
        text_el(&b, lx + 42, cy + 4.5, "start", 13, NULL, se->name);
    }
    if (n_notes) {
        double ny = ly + 22 * c->n_series + 18;
        text_el(&b, lx, ny, "start", 12, "font-style=\"italic\" fill=\"#555\"",
                "overlapping lines (hidden under the one named after =):");
        for (int i = 0; i < n_notes; i++)
            for (int k = 0; k < 2; k++)
                text_el(&b, lx + 12 * k, ny + 18 + 32 * i + 15 * k, "start", 12, "fill=\"#333\"", notes[i][k]);
    }
    sb_printf(&b, "</svg>\n");
    return sb_finish(&b, path, e);
}

/* ---- colour map ---------------------------------------------------------------------------- */

/* matplotlib's viridis at t = 0, 0.1, ..., 1. */
static const unsigned char viridis_anchor[11][3] = {
    {0x44, 0x01, 0x54}, {0x48, 0x24, 0x75}, {0x41, 0x44, 0x87}, {0x35, 0x5f, 0x8d},
    {0x2a, 0x78, 0x8e}, {0x21, 0x91, 0x8c}, {0x22, 0xa8, 0x84}, {0x44, 0xbf, 0x70},
    {0x7a, 0xd1, 0x51}, {0xbd, 0xdf, 0x26}, {0xfd, 0xe7, 0x25}};

void hp_viridis(double t, unsigned char rgb[3]) {
    if (isnan(t)) {
        rgb[0] = rgb[1] = rgb[2] = 0xd0;
        return;
    }
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double f = t * 10.0;
    int i = (int)f;
    if (i >= 10) i = 9;
    double u = f - i;
    for (int k = 0; k < 3; k++)
        rgb[k] = (unsigned char)lround(viridis_anchor[i][k] * (1 - u) + viridis_anchor[i + 1][k] * u);
}

/* ---- heatmap ------------------------------------------------------------------------------- */

/* Label every `step`-th index, step from 1, 2, 5, 10, ... so labels are >= min_px apart. */
static int label_step(double cell_px, double min_px) {
    static const int steps[] = {1, 2, 4, 5, 8, 10, 16, 20, 25, 50, 100, 200, 500, 1000};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        if (steps[i] * cell_px >= min_px) return steps[i];
    return 1000;
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

int hp_plot_heatmap_svg(const char *path, const hp_heatmap *h, hp_err *e) {
    if (h->rows < 1 || h->cols < 1 || !h->values)
        return hp_errf(e, "%s: heatmap needs rows, cols >= 1 and values", path);
    if (h->rows > 4096 || h->cols > 4096)
        return hp_errf(e, "%s: heatmap %dx%d is too large to draw", path, h->rows, h->cols);
    double vmin = INFINITY, vmax = -INFINITY;
    size_t n = (size_t)h->rows * (size_t)h->cols;
    for (size_t i = 0; i < n; i++)
        if (isfinite(h->values[i])) vmin = fmin(vmin, h->values[i]), vmax = fmax(vmax, h->values[i]);
    if (!isfinite(vmin)) vmin = 0.0, vmax = 1.0;
    if (isfinite(h->vmin)) vmin = h->vmin;
    if (isfinite(h->vmax)) vmax = h->vmax;
    if (vmax - vmin < 1e-30) vmax = vmin + 1.0; /* constant map: everything at the low colour */

    /* Cells as square as the aspect allows, within 8..40 px, for a ~560×480 px map. */
    double cw = clampd(560.0 / h->cols, 8, 40), ch = clampd(480.0 / h->rows, 8, 40);
    if (cw > 2.5 * ch) cw = 2.5 * ch;
    if (ch > 2.5 * cw) ch = 2.5 * cw;
    const double pw = cw * h->cols, ph = ch * h->rows;
    const double mt = (h->title ? 50 : 20) + (h->subtitle ? 20 : 0), mb = 58;
    double ml = 70;
    const double cbw = 18, cbx_gap = 22, cb_text = 54;
    double W = ml + pw + cbx_gap + cbw + cb_text + (h->colorbar_label ? 26 : 0) + 10;
    const double W_map = W; /* the map, its axes and colour bar */
    if (h->title) W = fmax(W, 0.6 * 17 * text_chars(h->title) + 40);
    if (h->subtitle) W = fmax(W, 0.6 * 13 * text_chars(h->subtitle) + 40);
    ml += (W - W_map) / 2; /* a title wider than the map: centre the map under it */
    const double H = mt + ph + mb;
    const double x0 = ml, y0 = mt;

    sbuf b = {0};
    svg_open(&b, W, H);
    if (h->title) text_el(&b, W / 2, 30, "middle", 17, "font-weight=\"bold\"", h->title);
    if (h->subtitle) text_el(&b, W / 2, h->title ? 52 : 30, "middle", 13, "fill=\"#444\"", h->subtitle);

    sb_printf(&b, "<g shape-rendering=\"crispEdges\">\n");
    for (int l = 0; l < h->rows; l++)
        for (int k = 0; k < h->cols; k++) {
            double v = h->values[(size_t)l * h->cols + k];
            unsigned char rgb[3];
            hp_viridis(isfinite(v) ? (v - vmin) / (vmax - vmin) : NAN, rgb);
            /* Cells overlap by a hair so no background seams show between them. */
            sb_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                          "fill=\"#%02x%02x%02x\"><title>L%d H%d: %.4g</title></rect>\n",
                      x0 + k * cw, y0 + l * ch, cw + 0.3, ch + 0.3, rgb[0], rgb[1], rgb[2], l, k, v);
        }
    sb_printf(&b, "</g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                  "stroke=\"#555\"/>\n", x0, y0, pw, ph);
    if (h->highlight) {
        /* Black outline with a thin white inner line: visible on dark and light cells alike. */
        sb_printf(&b, "<g fill=\"none\">\n");
        for (int l = 0; l < h->rows; l++)
            for (int k = 0; k < h->cols; k++)
                if (h->highlight[(size_t)l * h->cols + k]) {
                    double x = x0 + k * cw, y = y0 + l * ch;
                    sb_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                                  "stroke=\"black\" stroke-width=\"2\"/>\n", x + 1, y + 1, cw - 2, ch - 2);
                    if (cw > 7 && ch > 7)
                        sb_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                                      "stroke=\"white\" stroke-width=\"0.8\"/>\n",
                                  x + 2.4, y + 2.4, cw - 4.8, ch - 4.8);
                }
        sb_printf(&b, "</g>\n");
    }

    /* Axis ticks: layers on the left, heads below. */
    sb_printf(&b, "<g font-size=\"11\" fill=\"#333\">\n");
    int ls = label_step(ch, 14), hs = label_step(cw, 20);
    for (int l = 0; l < h->rows; l += ls)
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n", x0 - 6,
                  y0 + (l + 0.5) * ch + 4, l);
    for (int k = 0; k < h->cols; k += hs)
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n",
                  x0 + (k + 0.5) * cw, y0 + ph + 16, k);
    sb_printf(&b, "</g>\n");
    text_el(&b, x0 + pw / 2, y0 + ph + 42, "middle", 14, NULL, h->xlabel ? h->xlabel : "head");
    {
        char rot[96];
        snprintf(rot, sizeof rot, "transform=\"rotate(-90 %.1f %.1f)\"", x0 - 46, y0 + ph / 2);
        text_el(&b, x0 - 46, y0 + ph / 2, "middle", 14, rot, h->ylabel ? h->ylabel : "layer");
    }

    /* Colour bar: a vertical gradient, high values at the top. */
    double cbx = x0 + pw + cbx_gap;
    sb_printf(&b, "<linearGradient id=\"cbar\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n");
    for (int i = 0; i <= 10; i++)
        sb_printf(&b, "<stop offset=\"%.1f\" stop-color=\"#%02x%02x%02x\"/>\n", i / 10.0,
                  viridis_anchor[i][0], viridis_anchor[i][1], viridis_anchor[i][2]);
    sb_printf(&b, "</linearGradient>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                  "fill=\"url(#cbar)\" stroke=\"#555\"/>\n", cbx, y0, cbw, ph);
    double step = nice_step(vmax - vmin, ph >= 200 ? 5 : 3);
    int dec = step_decimals(step);
    sb_printf(&b, "<g font-size=\"11\" fill=\"#333\">\n");
    for (double t = ceil(vmin / step - 1e-9) * step; t <= vmax + 1e-9 * step; t += step) {
        double py = y0 + ph - (t - vmin) / (vmax - vmin) * ph;
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                  cbx + cbw, py, cbx + cbw + 4, py);
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">%.*f</text>\n", cbx + cbw + 7, py + 4, dec,
                  fabs(t) < 1e-12 * step ? 0.0 : t);
    }
    sb_printf(&b, "</g>\n");
    if (h->colorbar_label) {
        double lx = cbx + cbw + cb_text + 8;
        char rot[96];
        snprintf(rot, sizeof rot, "transform=\"rotate(-90 %.1f %.1f)\"", lx, y0 + ph / 2);
        text_el(&b, lx, y0 + ph / 2, "middle", 13, rot, h->colorbar_label);
    }
    sb_printf(&b, "</svg>\n");
    return sb_finish(&b, path, e);
}
