/* cider.h: CIDEr-D (Vedantam, Zitnick, Parikh 2015) as the coco-caption / pycocoevalcap `Cider`
 * scorer (cider_scorer.py) computes it, for the captioning experiment (PAPER.md §6).
 *
 * A corpus is a list of images, each with its reference captions; candidates (one per image)
 * are scored against it, so that one corpus scores the captions of every edited model:
 *   - n-grams of 1..4 words (a sentence is its words split on whitespace);
 *   - document frequency df(g) = the number of images whose references contain g, over the
 *     corpus' images (never the candidates);
 *   - weight of g in a sentence = tf(g) * (log(N) - log(max(1, df(g)))), N = images;
 *   - per n, clipped cosine sum_g min(h_g, r_g) r_g / (|h| |r|) (not divided when a norm is 0),
 *     times the length penalty exp(-d^2 / (2 * 6^2)) where d is the difference of the two
 *     sentences' bigram counts (cider_scorer.py's "length" counts bigrams: words - 1);
 *   - image score = 10 * mean over n, averaged over the image's references; corpus score = the
 *     mean of the image scores. N = 1 gives every weight log 1 - log 1 = 0 and a score of 0, as
 *     there.
 *
 * Strings are either already tokenised (split on ASCII whitespace only, as cider_scorer.py's
 * precook does with tokens from pycocoevalcap's PTBTokenizer) or raw, and then first go
 * through hp_cider_tokenize. */
#ifndef HP_CIDER_H
#define HP_CIDER_H

#include "common.h"

typedef struct hp_cider hp_cider;

/* An empty corpus; raw = 1: every reference and candidate goes through hp_cider_tokenize.
 * NULL when out of memory. */
hp_cider *hp_cider_new(int raw);
void hp_cider_free(hp_cider *c);

/* Adds one image with its n_refs >= 1 reference captions (an empty caption is allowed: it has
 * no n-grams). Returns the image's index, or -1 (out of memory, n_refs < 1). After an error
 * the corpus refuses every further call. */
int hp_cider_add_image(hp_cider *c, const char *const *refs, int n_refs, hp_err *e);
int hp_cider_n_images(const hp_cider *c);

/* CIDEr-D of cands[i] (non-NULL) against image i's references for every image i of the corpus:
 * per_image[i] (per_image may be NULL) and *mean, their mean. Scoring does not change the
 * corpus: candidates never enter the document frequencies. Returns 0, or -1 (empty corpus, a
 * NULL candidate, out of memory). */
int hp_cider_score(hp_cider *c, const char *const *cands, double *per_image, double *mean, hp_err *e);

/* s tokenised as pycocoevalcap's PTBTokenizer does (Stanford PTBTokenizer 3.4.1 with
 * -lowerCase -preserveLines, then its punctuation tokens dropped), approximated for ordinary
 * English captions: the tokens joined by single spaces (malloc'd; NULL when out of memory).
 * See cider.c for the rules and the known differences. */
char *hp_cider_tokenize(const char *s);

#endif
