/* cmd_toxicity.c: `headpursuit toxicity`: scores texts with the exported alt-profanity-check
 * classifier (toxicity.h), on their own: --text strings or one field of every JSONL record. */
#include "cli.h"
#include "commands.h"
#include "dataset.h"
#include "fileio.h"
#include "toxicity.h"

#include <cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#define CMD "toxicity"

static void usage(FILE *f) {
    fprintf(f,
            "usage: headpursuit toxicity (--text T ... | --file F.jsonl [--field NAME])\n"
            "                            [--classifier FILE] [--threshold P] [--terms] [--words W.txt]\n"
            "                            [--info]\n"
            "\n"
            "Scores texts with a trained profanity classifier run in C: alt-profanity-check 1.9.1\n"
            "(MIT; tf-idf over a 15,442-word vocabulary, 5 sigmoid-calibrated linear SVMs; exported by\n"
            "scripts/export_toxicity_model.sh). It reproduces the package's predict_prob to 1e-6. It\n"
            "is a profanity classifier, not Perspective API nor the RoBERTa classifier of the paper:\n"
            "it sees words, not meaning.\n"
            "\n"
            "  --text T          a text to score (repeatable)\n"
            "  --file F.jsonl    score one field of every record (blank lines skipped)\n"
            "  --field NAME      the field, a dotted path into nested objects (default text; e.g.\n"
            "                    continuation.text for RealToxicityPrompts)\n"
            "  --classifier FILE the exported model (default: data/toxicity/profanity_check.bin\n"
            "                    beside the headpursuit executable)\n"
            "  --threshold P     a text is toxic when its probability is >= P (default 0.5, what\n"
            "                    the package's predict uses)\n"
            "  --terms           also print the vocabulary terms found and their counts\n"
            "  --words W.txt     also count whole-word occurrences of these words (eval's lexical\n"
            "                    metric, e.g. wordlists/toxic_heldout.txt): \"hits\" and \"words\"\n"
            "  --info            print what the classifier file holds and exit\n"
            "  -h, --help        this text\n"
            "\n"
            "Prints one JSON object a line on stdout: {\"text\"|\"line\", \"prob\", \"toxic\"[, \"terms\"]\n"
            "[, \"hits\", \"words\"]};\n"
            "a summary (count, toxic count, rate, mean probability) on stderr.\n");
}

static int fail(const hp_err *e) {
    fprintf(stderr, "headpursuit " CMD ": %s\n", e->msg[0] ? e->msg : "failed");
    return 1;
}

/* Walks a dotted path ("prompt.text") into nested objects. */
static const cJSON *field_at(const cJSON *j, const char *path) {
    char part[256];
    while (j && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof part) return NULL;
        memcpy(part, path, n);
        part[n] = 0;
        j = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, part) : NULL;
        path += n + (dot != NULL);
    }
    return j;
}

typedef struct tally {
    long n, toxic;
    double sum;
} tally;

typedef struct outopts {
    double thr;
    int terms;
    const hp_wordlist *words; /* NULL: no lexical count */
} outopts;

static int score_one(const hp_toxclf *c, const char *text, size_t n, const char *key, const char *sval,
                     long lval, const outopts *oo, tally *t, hp_err *e) {
    double thr = oo->thr;
    int terms = oo->terms;
    double p;
    if (hp_toxclf_prob(c, text, n, &p, e)) return -1;
    cJSON *o = cJSON_CreateObject();
    if (!o) return hp_errf(e, "out of memory");
    if (sval) cJSON_AddStringToObject(o, key, sval);
    else cJSON_AddNumberToObject(o, key, (double)lval);
    char pbuf[40];
    snprintf(pbuf, sizeof pbuf, "%.17g", p); /* round-trips the double exactly */
    cJSON_AddRawToObject(o, "prob", pbuf);
    cJSON_AddBoolToObject(o, "toxic", p >= thr);
    if (terms) {
        int *cols, *cnt, u;
        if (hp_toxclf_terms(c, text, n, &cols, &cnt, &u, e)) {
            cJSON_Delete(o);
            return -1;
        }
        cJSON *tj = cJSON_AddObjectToObject(o, "terms");
        for (int i = 0; tj && i < u; i++) cJSON_AddNumberToObject(tj, c->terms[cols[i]], cnt[i]);
        free(cols);
        free(cnt);
    }
    if (oo->words) {
        long words = 0, hits = hp_lexicon_count((const char *const *)oo->words->words, oo->words->n, text, &words);
        cJSON_AddNumberToObject(o, "hits", (double)hits);
        cJSON_AddNumberToObject(o, "words", (double)words);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return hp_errf(e, "out of memory");
    puts(s);
    free(s);
    t->n++;
    t->toxic += p >= thr;
    t->sum += p;
    return 0;
}

static int score_file(const hp_toxclf *c, const char *path, const char *field, const outopts *oo, tally *t,
                      hp_err *e) {
    char *data;
    size_t len;
    if (hp_read_file(path, &data, &len, e)) return -1;
    long line = 0;
    int rc = 0;
    for (char *p = data; p < data + len && !rc;) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        char *end = nl ? nl : data + len;
        line++;
        size_t n = (size_t)(end - p);
        int blank = 1;
        for (size_t i = 0; i < n && blank; i++) blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
        if (!blank) {
            cJSON *j = cJSON_ParseWithLength(p, n);
            const cJSON *v = j ? field_at(j, field) : NULL;
            if (!j) rc = hp_errf(e, "%s:%ld: not valid JSON", path, line);
            else if (!v) rc = hp_errf(e, "%s:%ld: no field \"%s\"", path, line, field);
            else if (!cJSON_IsString(v)) rc = hp_errf(e, "%s:%ld: \"%s\" is not a string", path, line, field);
            else if (hp_utf8_invalid_at(v->valuestring, strlen(v->valuestring)) >= 0)
                rc = hp_errf(e, "%s:%ld: \"%s\" is not valid UTF-8", path, line, field);
            else
                rc = score_one(c, v->valuestring, strlen(v->valuestring), "line", NULL, line, oo, t, e);
            cJSON_Delete(j);
        }
        p = end + 1;
    }
    free(data);
    return rc;
}

enum { O_TEXT = 1000, O_FILE, O_FIELD, O_CLF, O_THR, O_TERMS, O_INFO, O_HELP, O_WORDS };

int cmd_toxicity(int argc, char **argv) {
    static const struct option lo[] = {
        {"text", required_argument, 0, O_TEXT},     {"file", required_argument, 0, O_FILE},
        {"field", required_argument, 0, O_FIELD},   {"classifier", required_argument, 0, O_CLF},
        {"threshold", required_argument, 0, O_THR}, {"terms", no_argument, 0, O_TERMS},
        {"info", no_argument, 0, O_INFO},           {"help", no_argument, 0, O_HELP},
        {"words", required_argument, 0, O_WORDS},
        {0, 0, 0, 0}};
    const char **texts = calloc((size_t)argc + 1, sizeof *texts);
    const char *file = NULL, *field = "text", *clf = NULL, *words = NULL;
    float thr = 0.5f;
    int n_text = 0, terms = 0, info = 0, c;
    if (!texts) return 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_TEXT: texts[n_text++] = optarg; break;
        case O_FILE: file = optarg; break;
        case O_FIELD: field = optarg; break;
        case O_CLF: clf = optarg; break;
        case O_THR:
            if (hp_opt_float(CMD, "--threshold", optarg, 0, 1, &thr)) {
                free(texts);
                return 2;
            }
            break;
        case O_TERMS: terms = 1; break;
        case O_INFO: info = 1; break;
        case O_WORDS: words = optarg; break;
        case 'h':
        case O_HELP: usage(stdout); free(texts); return 0;
        default: free(texts); return hp_opt_unknown(CMD);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "headpursuit " CMD ": unexpected argument '%s'\n", argv[optind]);
        free(texts);
        return 2;
    }
    if (!info && !n_text == !file) {
        fprintf(stderr, "headpursuit " CMD ": give --text or --file (not both)\n");
        usage(stderr);
        free(texts);
        return 2;
    }
    if (!field[0]) {
        fprintf(stderr, "headpursuit " CMD ": --field '': expected a field name\n");
        free(texts);
        return 2;
    }
    char defpath[4200];
    if (!clf) {
        if (hp_toxclf_default_path(defpath, sizeof defpath)) {
            fprintf(stderr, "headpursuit " CMD ": cannot locate the default classifier; use --classifier\n");
            free(texts);
            return 2;
        }
        clf = defpath;
    }
    if (hp_opt_input(CMD, "--classifier", clf, 0) || (file && hp_opt_input(CMD, "--file", file, 0)) ||
        (words && hp_opt_words_file(CMD, "--words", words))) {
        free(texts);
        return 2;
    }
    hp_err e = {{0}};
    hp_toxclf m;
    if (hp_toxclf_load(clf, &m, &e)) {
        free(texts);
        return fail(&e);
    }
    if (info) {
        printf("{\"file\": \"%s\", \"source\": \"%s\", \"vocabulary\": %d, \"folds\": %d, "
               "\"word_ranges\": %d, \"lowercase_entries\": %d}\n",
               clf, m.source, m.V, m.K, m.n_word, m.n_lower);
        hp_toxclf_free(&m);
        free(texts);
        return 0;
    }
    tally t = {0, 0, 0};
    hp_wordlist wl = {0};
    outopts oo = {thr, terms, words ? &wl : NULL};
    int rc = words ? hp_wordlist_load(words, &wl, &e) : 0;
    for (int i = 0; i < n_text && !rc; i++) {
        if (hp_utf8_invalid_at(texts[i], strlen(texts[i])) >= 0)
            rc = hp_errf(&e, "--text %d is not valid UTF-8", i + 1);
        else
            rc = score_one(&m, texts[i], strlen(texts[i]), "text", texts[i], 0, &oo, &t, &e);
    }
    if (!rc && file) rc = score_file(&m, file, field, &oo, &t, &e);
    hp_toxclf_free(&m);
    hp_wordlist_free(&wl);
    free(texts);
    if (rc) return fail(&e);
    fprintf(stderr, "toxicity: %ld texts, %ld toxic (rate %.4f), mean probability %.4f\n", t.n, t.toxic,
            t.n ? (double)t.toxic / t.n : 0.0, t.n ? t.sum / t.n : 0.0);
    return 0;
}
