/* cmd_eval.c: `eval`: the options of the QA task (host/eval/task_qa.h); --task classify|caption go
 * to cmd_eval_vision.c. */
#include "cli.h"
#include "commands.h"
#include "eval_report.h"
#include "experiment.h"
#include "task_qa.h"
#include "task_toxicity.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { E_TASK = 3000, E_DATA, E_EDIT, E_TOP, E_ALPHA, E_RANDOM, E_SEED, E_OUTDIR, E_MAXNEW, E_LIMIT,
       E_BATCH, E_DEVICE, E_NOCHAT, E_COUNTRIES, E_QUIET, E_HELP, E_MAXPROMPT, E_NOPREFIX };

int cmd_eval(int argc, char **argv) {
    static const struct option lo[] = {
        {"task", required_argument, 0, E_TASK},     {"data", required_argument, 0, E_DATA},
        {"edit", required_argument, 0, E_EDIT},     {"top", required_argument, 0, E_TOP},
        {"alpha", required_argument, 0, E_ALPHA},   {"random", required_argument, 0, E_RANDOM},
        {"seed", required_argument, 0, E_SEED},     {"out-dir", required_argument, 0, E_OUTDIR},
        {"max-new", required_argument, 0, E_MAXNEW}, {"limit", required_argument, 0, E_LIMIT},
        {"batch", required_argument, 0, E_BATCH},   {"device", required_argument, 0, E_DEVICE},
        {"no-chat", no_argument, 0, E_NOCHAT},      {"countries", required_argument, 0, E_COUNTRIES},
        {"quiet", no_argument, 0, E_QUIET},         {"help", no_argument, 0, E_HELP},
        {"max-prompt-tokens", required_argument, 0, E_MAXPROMPT}, {"no-prefix-reuse", no_argument, 0, E_NOPREFIX},
        {0}};
    const char *data = NULL, *edit = NULL, *tops = "8,16,32", *outdir = "results/eval";
    const char *device = "auto", *countries = NULL;
    float alpha = -1.0f;
    int n_random = 10, max_new = 16, limit = 0, batch = 32, chat = 1, quiet = 0, max_prompt = 0, prefix = 1, c;
    unsigned long long seed = 0;
    if (!strcmp(hp_eval_task(argc, argv), "toxicity")) return cmd_eval_toxicity(argc, argv);
    if (strcmp(hp_eval_task(argc, argv), "qa")) return cmd_eval_vision(argc, argv);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case E_TASK: break; /* qa: hp_eval_task handed the other tasks over */
        case E_DATA: data = optarg; break;
        case E_EDIT: edit = optarg; break;
        case E_TOP: tops = optarg; break;
        case E_ALPHA:
            if (hp_opt_float("eval", "--alpha", optarg, -HUGE_VAL, HUGE_VAL, &alpha)) return 2;
            break;
        case E_RANDOM:
            if (hp_opt_int("eval", "--random", optarg, 0, INT_MAX, &n_random)) return 2;
            break;
        case E_SEED:
            if (hp_opt_u64("eval", "--seed", optarg, &seed)) return 2;
            break;
        case E_OUTDIR: outdir = optarg; break;
        case E_MAXNEW:
            if (hp_opt_int("eval", "--max-new", optarg, 1, INT_MAX, &max_new)) return 2;
            break;
        case E_LIMIT:
            if (hp_opt_int("eval", "--limit", optarg, 0, INT_MAX, &limit)) return 2;
            break;
        case E_BATCH:
            if (hp_opt_int("eval", "--batch", optarg, 1, INT_MAX, &batch)) return 2;
            break;
        case E_DEVICE: device = optarg; break;
        case E_NOCHAT: chat = 0; break;
        case E_COUNTRIES: countries = optarg; break;
        case E_QUIET: quiet = 1; break;
        case E_NOPREFIX: prefix = 0; break;
        case E_MAXPROMPT:
            if (hp_opt_int("eval", "--max-prompt-tokens", optarg, 1, INT_MAX, &max_prompt)) return 2;
            break;
        case E_HELP:
            printf("usage: headpursuit eval MODEL --task qa --data test.jsonl --edit ranking.json\n"
                   "                 [--top 8,16,32] [--alpha -1] [--random 10] [--seed S] [--out-dir DIR]\n"
                   "Answers each question greedily (PAPER.md prompt, at most --max-new tokens; the answer is\n"
                   "the reply's first line, cut where a base model starts a new \"Question:\"),\n"
                   "scores SQuAD F1 / exact match for concept (country) and other questions, normalised to\n"
                   "the unedited model, with the top-k SOMP heads, the top-k Logit-Lens heads and --random\n"
                   "random controls (same per-layer counts as the SOMP heads, disjoint from them) edited by\n"
                   "--alpha. Writes DIR/eval.json, DIR/eval.csv, DIR/f1_vs_k.svg, DIR/match_vs_k.svg,\n"
                   "DIR/heads_heatmap.svg. Answer match: an accepted answer occurs in the reply.\n"
                   "Without --edit only the unedited model runs (DIR/baseline.json: scores and answers).\n"
                   "Each finished configuration is kept in DIR/runs/: a re-run with the same settings\n"
                   "resumes where a killed one stopped.\n"
                   "  --task classify|caption   LLaVA image tasks (see eval --task classify --help)\n"
                   "  --task toxicity    toxicity mitigation (see eval --task toxicity --help)\n"
                   "  --countries FILE   mark questions whose answer is in this list as country questions\n"
                   "                     (needed for TriviaQA files; JSONL from build_qa.py has kinds)\n"
                   "  --max-new N        answer budget in tokens (default 16: chat models often open with\n"
                   "                     a phrase like \"The answer is:\"; 8 cut 12 of SmolLM2's 40 country\n"
                   "                     answers short); the answer is the first line of the reply\n"
                   "  --limit N          first N questions only\n"
                   "  --batch B          questions per generation batch (default 32)\n"
                   "  --no-chat          raw prompts instead of the model's chat template\n"
                   "  --max-prompt-tokens N  refuse (naming the record) a prompt of more than N tokens\n"
                   "                     (default: the model's context length, if known)\n"
                   "  --no-prefix-reuse  recompute every prompt's prefill in every configuration (by default\n"
                   "                     the unedited prefill of each batch is kept and an edited run starts\n"
                   "                     at its lowest edited layer: the same results bit for bit, faster)\n"
                   "  --device D         auto, cpu or cuda\n");
            return 0;
        default: return hp_opt_unknown("eval");
        }
    }
    int ks[HP_EVAL_MAX_K], nk = 0;
    if (hp_eval_parse_tops(tops, ks, &nk)) {
        fprintf(stderr, "headpursuit eval: --top '%s': expected up to %d increasing integers >= 1, comma-separated "
                        "(like 8,16,32)\n", tops, HP_EVAL_MAX_K);
        return 2;
    }
    if (hp_opt_one_arg("eval", "MODEL", argc, argv)) return 2;
    if (!data) {
        fprintf(stderr, "headpursuit eval: need --data test.jsonl (see headpursuit eval --help)\n");
        return 2;
    }
    /* Every input file, before the model loads. */
    if (hp_opt_qa_file("eval", "--data", data) || (edit && hp_opt_input("eval", "--edit", edit, 0)) ||
        (countries && hp_opt_words_file("eval", "--countries", countries)))
        return 2;
    hp_err e = {0};
    hp_model *m = hp_cli_open(argv[optind], device, quiet, &e);
    if (!m) return hp_cli_fail(&e);
    hp_qa_task t = {.model_path = argv[optind], .data = data, .ranking = edit, .countries = countries,
                    .outdir = outdir, .nk = nk, .alpha = alpha, .n_random = n_random, .max_new = max_new,
                    .limit = limit, .batch = batch, .chat = chat, .quiet = quiet, .max_prompt = max_prompt,
                    .seed = seed, .prefix_reuse = prefix};
    memcpy(t.ks, ks, sizeof(int) * (size_t)nk);
    int rc = hp_task_qa(m, &t, &e) ? hp_cli_fail(&e) : 0;
    hp_cli_close(m);
    return rc;
}
