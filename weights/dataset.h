/* dataset.h: readers for the question-answering data and for concept word lists.
 *
 * QA sets come in two published shapes, both read into one struct:
 *   - JSONL, one object a line: {"id", "question", "answers": [...], "kind": "country"|"other"}
 *     (scripts/build_qa.py writes this), or {"question", "answer": "..."} with one answer;
 *   - TriviaQA's JSON: {"Data": [{"Question", "QuestionId", "Answer": {"Value", "Aliases"}}]}.
 * Word lists are UTF-8 text, one word or phrase a line, '#' comments and blank lines skipped.
 * Errors name the file and the line (JSONL, word lists, malformed JSON) or the record. */
#ifndef HP_DATASET_H
#define HP_DATASET_H

#include "common.h"

/* What kind of answer a question expects. UNKNOWN until a file or hp_qa_mark_kind says. */
enum { HP_QA_UNKNOWN = 0, HP_QA_COUNTRY = 1, HP_QA_OTHER = 2 };

typedef struct hp_qa_item {
    char *id;       /* from the file; "<line>" (JSONL) or the index (TriviaQA) when absent */
    char *question; /* UTF-8 */
    char **answers; /* n_answers accepted answers, distinct, n_answers >= 1 */
    int n_answers;
    int kind; /* HP_QA_COUNTRY, HP_QA_OTHER, HP_QA_UNKNOWN */
    long line; /* JSONL: the record's 1-based line (for messages); TriviaQA: 0 */
} hp_qa_item;

typedef struct hp_qa_set {
    hp_qa_item *items;
    int n;
} hp_qa_set;

/* JSONL: one record per non-empty line. Fields: "question" (string, required), "answers"
 * (array of strings, at least one) or "answer" (string), "id" (string or integer, optional),
 * "kind" ("country", "other" or "unknown", optional); other fields are ignored. */
int hp_qa_load_jsonl(const char *path, hp_qa_set *out, hp_err *e);
/* TriviaQA JSON (unfiltered-web-dev.json, verified-wikipedia-dev.json, ...): answers are
 * Answer.Value followed by Answer.Aliases, duplicates dropped. A record without an Answer
 * (the published test files) is an error: there is nothing to score against. */
int hp_qa_load_triviaqa(const char *path, hp_qa_set *out, hp_err *e);
/* Either format: a file that parses as one JSON object holding "Data" is TriviaQA, anything
 * else is read as JSONL. */
int hp_qa_load(const char *path, hp_qa_set *out, hp_err *e);
void hp_qa_free(hp_qa_set *s);
const char *hp_qa_kind_name(int kind);

typedef struct hp_wordlist {
    char **words; /* n entries, trimmed of surrounding ASCII whitespace, file order */
    int n;
} hp_wordlist;

int hp_wordlist_load(const char *path, hp_wordlist *out, hp_err *e);
void hp_wordlist_free(hp_wordlist *w);

/* Strict UTF-8 check (no overlongs, surrogates or code points past U+10FFFF). Returns the
 * byte offset of the first bad sequence, or -1 when all n bytes are valid. */
long hp_utf8_invalid_at(const char *s, size_t n);

#endif
