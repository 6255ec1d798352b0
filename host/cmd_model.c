/* cmd_model.c: the model commands: info, tokenize, logits, generate, capture. */
#include "chat.h"
#include "cli.h"
#include "experiment.h"
#include "ranking.h"
#include "commands.h"
#include "npy.h"

#include <cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Options most model commands share. */
typedef struct common_opts {
    const char *device, *text, *ids, *ids_file, *heads, *out, *edit, *by;
    const char *text_flag; /* the option that gave text (--text, --prompt), for messages */
    float alpha;
    int top;
    int max_prompt; /* --max-prompt-tokens (0: the model's context) */
    int no_special, quiet, json;
} common_opts;

enum { O_DEVICE = 1000, O_TEXT, O_IDS, O_IDS_FILE, O_HEADS, O_ALPHA, O_NO_SPECIAL, O_QUIET, O_JSON,
       O_OUT, O_PROMPT, O_CHAT, O_TEMPLATE, O_SYSTEM, O_MAX_NEW, O_NO_EOS, O_POSITIONS, O_EDIT, O_TOP, O_BY, O_HELP,
       O_MAX_PROMPT };

#define COMMON_LONGOPTS                                                                           \
    {"device", required_argument, 0, O_DEVICE}, {"text", required_argument, 0, O_TEXT},           \
        {"ids", required_argument, 0, O_IDS}, {"ids-file", required_argument, 0, O_IDS_FILE},     \
        {"heads", required_argument, 0, O_HEADS}, {"alpha", required_argument, 0, O_ALPHA},       \
        {"no-special", no_argument, 0, O_NO_SPECIAL}, {"quiet", no_argument, 0, O_QUIET},         \
        {"json", no_argument, 0, O_JSON}, {"out", required_argument, 0, O_OUT},                   \
        {"edit", required_argument, 0, O_EDIT}, {"top", required_argument, 0, O_TOP},            \
        {"by", required_argument, 0, O_BY}, {"help", no_argument, 0, O_HELP},                     \
        {"max-prompt-tokens", required_argument, 0, O_MAX_PROMPT}

static const char *COMMON_HELP =
    "  --device D        auto (default: CUDA when a GPU exists, else CPU), cpu or cuda\n"
    "  --heads L.H,...   edit these heads (layer.head, 0-based): scale their output by --alpha\n"
    "  --edit R.json     edit the top --top K heads of a ranking file (from `rank`)\n"
    "  --top K           how many heads of the ranking (default 8)\n"
    "  --by somp|ll      which order of the ranking (default somp)\n"
    "  --alpha A         edit factor (default -1: inversion)\n"
    "  --max-prompt-tokens N  refuse a prompt of more than N tokens (default: the model's\n"
    "                    context length, if known)\n"
    "  --quiet           no log lines on stderr\n"
    "  --help            this text\n";

/* Returns 1 if the option was a common one with a good value; else 0, having said why (an
 * unknown option or a bad value; the command exits with 2). */
static int common_opt(common_opts *o, int c, const char *cmd) {
    switch (c) {
    case O_DEVICE: o->device = optarg; return 1;
    case O_TEXT: o->text = optarg, o->text_flag = "--text"; return 1;
    case O_MAX_PROMPT: return !hp_opt_int(cmd, "--max-prompt-tokens", optarg, 1, INT_MAX, &o->max_prompt);
    case O_IDS: o->ids = optarg; return 1;
    case O_IDS_FILE: o->ids_file = optarg; return 1;
    case O_HEADS: o->heads = optarg; return 1;
    case O_ALPHA: return !hp_opt_float(cmd, "--alpha", optarg, -HUGE_VAL, HUGE_VAL, &o->alpha);
    case O_NO_SPECIAL: o->no_special = 1; return 1;
    case O_QUIET: o->quiet = 1; return 1;
    case O_JSON: o->json = 1; return 1;
    case O_OUT: o->out = optarg; return 1;
    case O_EDIT: o->edit = optarg; return 1;
    case O_TOP: return !hp_opt_int(cmd, "--top", optarg, 1, INT_MAX, &o->top);
    case O_BY:
        o->by = optarg;
        if (strcmp(optarg, "somp") && strcmp(optarg, "ll")) {
            fprintf(stderr, "headpursuit %s: --by '%s': expected somp or ll\n", cmd, optarg);
            return 0;
        }
        return 1;
    default: hp_opt_unknown(cmd); return 0;
    }
}

static void common_init(common_opts *o) {
    memset(o, 0, sizeof *o);
    o->device = "auto";
    o->alpha = -1.0f;
    o->top = 8;
    o->by = "somp";
}

/* Head edits from --edit/--top/--by and --heads (both may be given). */
static int apply_edits(const common_opts *o, hp_model *m, hp_err *e) {
    if (o->edit) {
        hp_ranking rk;
        hp_headset hs = {0};
        if (strcmp(o->by, "somp") && strcmp(o->by, "ll")) return hp_errf(e, "--by: expected somp or ll");
        if (hp_ranking_load(o->edit, &rk, e)) return -1;
        int rc = hp_ranking_check(&rk, o->edit, m->cfg.L, m->cfg.H, o->top, e)
                     ? -1
                     : hp_headset_top((const int(*)[2])(strcmp(o->by, "ll") ? rk.somp : rk.ll), rk.n, o->top, &hs, e);
        if (!rc) rc = hp_headset_apply(m, &hs, o->alpha, e);
        if (!rc && !o->quiet) {
            char *str = hp_headset_str(&hs);
            fprintf(stderr, "editing %d heads (alpha %g): %s\n", hs.n, o->alpha, str ? str : "");
            free(str);
        }
        hp_headset_free(&hs);
        hp_ranking_free(&rk);
        if (rc) return -1;
    }
    return o->heads ? hp_cli_apply_heads(m, o->heads, o->alpha, e) : 0;
}

/* Checks, before the model loads, what the common options name: exactly one prompt source when
 * text_opt is set ("--text"; generate's is "--prompt"), and that --ids-file and --edit are
 * readable files. Prints why not and returns -1. */
static int check_common(const common_opts *o, const char *cmd, const char *text_opt) {
    if (text_opt && !!o->text + !!o->ids + !!o->ids_file != 1) {
        fprintf(stderr, "headpursuit %s: give exactly one of %s TEXT, --ids 1,2,3 or --ids-file F.json (see headpursuit %s --help)\n",
                cmd, text_opt, cmd);
        return -1;
    }
    if (o->ids_file && hp_opt_input(cmd, "--ids-file", o->ids_file, 0)) return -1;
    if (o->edit && hp_opt_input(cmd, "--edit", o->edit, 0)) return -1;
    return 0;
}

/* Prompts from --text / --ids / --ids-file (exactly one, checked by check_common), each within
 * the prompt cap. */
static int gather_prompts(const common_opts *o, const hp_model *m, hp_prompts *p, hp_err *e) {
    int given = !!o->text + !!o->ids + !!o->ids_file;
    if (given != 1) return hp_errf(e, "give exactly one of --text, --ids, --ids-file");
    int rc = o->text ? hp_prompts_add_text(p, m, o->text, !o->no_special, e)
             : o->ids ? hp_prompts_add_csv(p, o->ids, e)
                      : hp_prompts_from_json(p, o->ids_file, e);
    const char *where = o->text ? o->text_flag : o->ids ? "--ids" : o->ids_file;
    return rc ? rc : hp_prompts_fit(p, hp_prompt_cap(m, o->max_prompt), where, e);
}

/* ---------------------------------------------------------------- info */
int cmd_info(int argc, char **argv) {
    static const struct option lo[] = {{"json", no_argument, 0, O_JSON}, {"help", no_argument, 0, O_HELP}, {0}};
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == O_JSON) json = 1;
        else if (c == O_HELP) {
            printf("usage: headpursuit info MODEL [--json]\n"
                   "Architecture, sizes, parameter count, heads per layer, stored dtypes, tokenizer and\n"
                   "chat template of MODEL (a directory with config.json + safetensors, or a .gguf file).\n"
                   "Every tensor is checked against the config; no weights are converted.\n");
            return 0;
        } else return hp_opt_unknown("info");
    }
    if (hp_opt_one_arg("info", "MODEL", argc, argv)) return 2;
    hp_err e = {0};
    hp_model *m = hp_model_load(argv[optind], NULL, &e);
    if (!m) return hp_cli_fail(&e);
    const hp_config *k = &m->cfg;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "path", m->path);
    cJSON_AddStringToObject(j, "format", m->is_gguf ? "gguf" : "safetensors");
    cJSON_AddStringToObject(j, "architecture", k->arch_name);
    cJSON_AddNumberToObject(j, "parameters", (double)m->n_params);
    cJSON_AddNumberToObject(j, "layers", k->L);
    cJSON_AddNumberToObject(j, "heads_per_layer", k->H);
    cJSON_AddNumberToObject(j, "total_heads", k->L * k->H);
    cJSON_AddNumberToObject(j, "kv_heads", k->KV);
    cJSON_AddNumberToObject(j, "head_dim", k->Dh);
    cJSON_AddNumberToObject(j, "hidden_size", k->D);
    cJSON_AddNumberToObject(j, "intermediate_size", k->F);
    cJSON_AddNumberToObject(j, "vocab_size", k->V);
    cJSON_AddStringToObject(j, "hidden_act", hp_mlp_act_name(k->mlp_act));
    cJSON_AddNumberToObject(j, "rope_theta", k->rope_theta);
    cJSON_AddStringToObject(j, "rope_scaling", hp_rope_type_name(k->rope_type));
    if (k->rope_type != HP_ROPE_DEFAULT) cJSON_AddNumberToObject(j, "rope_factor", k->rope_factor);
    cJSON_AddBoolToObject(j, "rope_freqs_tensor", k->rope_freqs_tensor);
    cJSON_AddNumberToObject(j, "rms_norm_eps", k->rms_eps);
    if (k->sliding_window) cJSON_AddNumberToObject(j, "sliding_window", k->sliding_window);
    else cJSON_AddNullToObject(j, "sliding_window");
    cJSON_AddBoolToObject(j, "tie_word_embeddings", k->tie_embeddings);
    if (k->gemma) {
        cJSON *lt = cJSON_AddArrayToObject(j, "sliding_layers");
        for (int l = 0; l < k->L; l++)
            if (k->layer_local[l]) cJSON_AddItemToArray(lt, cJSON_CreateNumber(l));
        cJSON_AddNumberToObject(j, "rope_local_base_freq", k->rope_local_theta);
        cJSON_AddNumberToObject(j, "query_scale", k->query_scale);
        cJSON_AddNumberToObject(j, "final_logit_softcapping", k->final_softcap);
    }
    cJSON *dt = cJSON_AddObjectToObject(j, "dtypes");
    for (int r = 0; r < HP_T_COUNT; r++) {
        if (!hp_role_needed(k, r)) continue;
        const char *nm = hp_tensor_name(k, r, m->is_gguf);
        char name[160];
        snprintf(name, sizeof name, nm, 0);
        cJSON_AddStringToObject(dt, name, hp_dtype_name(m->file_dtype[r]));
    }
    if (m->tok) {
        cJSON_AddStringToObject(j, "tokenizer", hp_tok_kind_of(m->tok) == HP_TOK_SPM_BPE ? "sentencepiece-bpe" : "byte-level-bpe");
        cJSON_AddNumberToObject(j, "tokenizer_vocab", hp_tok_vocab_size(m->tok));
    } else {
        cJSON_AddNullToObject(j, "tokenizer");
    }
    cJSON_AddStringToObject(j, "chat_template", hp_chat_name(m->chat));
    if (json) {
        char *s = cJSON_Print(j);
        puts(s);
        free(s);
    } else {
        printf("%s (%s)\n", m->path, m->is_gguf ? "GGUF" : "safetensors");
        printf("  architecture      %s\n", k->arch_name);
        printf("  parameters        %.2fM\n", m->n_params / 1e6);
        printf("  layers x heads    %d x %d = %d heads (KV heads %d, head_dim %d)\n", k->L, k->H,
               k->L * k->H, k->KV, k->Dh);
        printf("  hidden / mlp      %d / %d (act(gate)·up, act %s)\n", k->D, k->F,
               hp_mlp_act_name(k->mlp_act));
        printf("  vocab             %d\n", k->V);
        printf("  rope_theta        %g\n  rms_norm_eps      %g\n", k->rope_theta, k->rms_eps);
        if (k->rope_type == HP_ROPE_LLAMA3)
            printf("  rope scaling      llama3 (factor %g, low/high freq factor %g/%g, original "
                   "context %d)\n", k->rope_factor, k->rope_low_freq, k->rope_high_freq,
                   k->rope_orig_max_pos);
        else if (k->rope_type == HP_ROPE_LINEAR)
            printf("  rope scaling      linear (factor %g)\n", k->rope_factor);
        if (k->rope_freqs_tensor) printf("  rope frequencies  divided by rope_freqs.weight\n");
        if (k->sliding_window) printf("  sliding_window    %d\n", k->sliding_window);
        else printf("  sliding_window    none\n");
        printf("  tied embeddings   %s\n", k->tie_embeddings ? "yes" : "no");
        if (k->gemma) {
            int nl = 0;
            for (int l = 0; l < k->L; l++) nl += k->layer_local[l];
            printf("  gemma 3           %d sliding layers (rope base %g), %d global; query scale %g; "
                   "final logit softcap %g\n", nl, k->rope_local_theta, k->L - nl, k->query_scale,
                   k->final_softcap);
        }
        printf("  tokenizer         %s\n", m->tok ? (hp_tok_kind_of(m->tok) == HP_TOK_SPM_BPE ? "SentencePiece-style BPE" : "byte-level BPE") : "none");
        printf("  chat template     %s\n", hp_chat_name(m->chat));
        printf("  tensors (layer 0 shown for per-layer tensors):\n");
        for (int r = 0; r < HP_T_COUNT; r++) {
            if (!hp_role_needed(k, r)) continue;
            int64_t sh[2];
            int nd = hp_tensor_shape(k, r, sh);
            char name[160];
            snprintf(name, sizeof name, hp_tensor_name(k, r, m->is_gguf), 0);
            if (nd == 2)
                printf("    %-44s %-5s [%lld, %lld]\n", name, hp_dtype_name(m->file_dtype[r]),
                       (long long)sh[0], (long long)sh[1]);
            else
                printf("    %-44s %-5s [%lld]\n", name, hp_dtype_name(m->file_dtype[r]), (long long)sh[0]);
        }
    }
    cJSON_Delete(j);
    hp_model_free(m);
    return 0;
}

/* ---------------------------------------------------------------- tokenize */
int cmd_tokenize(int argc, char **argv) {
    static const struct option lo[] = {COMMON_LONGOPTS, {0}};
    common_opts o;
    common_init(&o);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == O_HELP) {
            printf("usage: headpursuit tokenize MODEL --text T [--no-special]\n"
                   "Prints {\"ids\": [...], \"tokens\": [...]} for T, as HF's tokenizer encodes it\n"
                   "(add_special_tokens=True unless --no-special). Special tokens written in T count.\n");
            return 0;
        }
        if (!common_opt(&o, c, "tokenize")) return 2;
    }
    if (hp_opt_one_arg("tokenize", "MODEL", argc, argv)) return 2;
    if (!o.text) {
        fprintf(stderr, "headpursuit tokenize: need --text T (see headpursuit tokenize --help)\n");
        return 2;
    }
    hp_err e = {0};
    hp_model *m = hp_model_load(argv[optind], NULL, &e);
    if (!m) return hp_cli_fail(&e);
    if (!m->tok) {
        hp_errf(&e, "%s: no tokenizer", argv[optind]);
        hp_model_free(m);
        return hp_cli_fail(&e);
    }
    int32_t *ids;
    int n;
    if (hp_tok_encode(m->tok, o.text, strlen(o.text), !o.no_special, &ids, &n, &e)) {
        hp_model_free(m);
        return hp_cli_fail(&e);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(j, "ids"), *t = cJSON_AddArrayToObject(j, "tokens");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(t, cJSON_CreateString(hp_tok_piece(m->tok, ids[i])));
    }
    char *s = cJSON_PrintUnformatted(j);
    puts(s);
    free(s);
    cJSON_Delete(j);
    free(ids);
    hp_model_free(m);
    return 0;
}

/* Packs prompts: prompt b occupies KV slot b, positions 0..len-1. */
typedef struct packed {
    int T;
    int32_t *ids, *seq, *pos, *rows;
} packed;

static int pack(const hp_prompts *p, packed *k, hp_err *e) {
    k->T = 0;
    for (int b = 0; b < p->B; b++) k->T += p->len[b];
    k->ids = malloc(sizeof(int32_t) * k->T);
    k->seq = malloc(sizeof(int32_t) * k->T);
    k->pos = malloc(sizeof(int32_t) * k->T);
    k->rows = malloc(sizeof(int32_t) * k->T);
    if (!k->ids || !k->seq || !k->pos || !k->rows) return hp_errf(e, "out of memory");
    int t = 0;
    for (int b = 0; b < p->B; b++)
        for (int i = 0; i < p->len[b]; i++, t++) {
            k->ids[t] = p->ids[b][i];
            k->seq[t] = b;
            k->pos[t] = i;
            k->rows[t] = t;
        }
    return 0;
}

static void unpack_free(packed *k) {
    free(k->ids);
    free(k->seq);
    free(k->pos);
    free(k->rows);
}

static int max_len(const hp_prompts *p) {
    int m = 0;
    for (int b = 0; b < p->B; b++)
        if (p->len[b] > m) m = p->len[b];
    return m;
}

/* ---------------------------------------------------------------- logits */
int cmd_logits(int argc, char **argv) {
    static const struct option lo[] = {COMMON_LONGOPTS, {0}};
    common_opts o;
    common_init(&o);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == O_HELP) {
            printf("usage: headpursuit logits MODEL (--text T | --ids 1,2,3 | --ids-file F.json) --out F.npy\n"
                   "Float32 logits for every position, as a .npy file: [T, V] for one prompt; for\n"
                   "--ids-file (a JSON list of token-id lists) [B, Tmax, V], zeros past each prompt's end.\n"
                   "  --no-special      with --text: do not add BOS / special tokens\n%s", COMMON_HELP);
            return 0;
        }
        if (!common_opt(&o, c, "logits")) return 2;
    }
    if (hp_opt_one_arg("logits", "MODEL", argc, argv) || check_common(&o, "logits", "--text")) return 2;
    if (!o.out) {
        fprintf(stderr, "headpursuit logits: need --out F.npy (see headpursuit logits --help)\n");
        return 2;
    }
    hp_err e = {0};
    hp_model *m = hp_cli_open(argv[optind], o.device, o.quiet, &e);
    if (!m) return hp_cli_fail(&e);
    hp_prompts p = {0};
    packed k = {0};
    hp_runtime *rt = NULL;
    float *logits = NULL, *out = NULL;
    int rc = 1;
    if (gather_prompts(&o, m, &p, &e)) goto done;
    if (apply_edits(&o, m, &e)) goto done;
    if (pack(&p, &k, &e)) goto done;
    int V = m->cfg.V, Tm = max_len(&p);
    rt = hp_runtime_create(m, p.B, Tm, k.T < 256 ? k.T : 256, 0, &e);
    logits = malloc(sizeof(float) * (size_t)k.T * V);
    if (!rt || !logits) {
        if (!e.msg[0]) hp_errf(&e, "out of memory");
        goto done;
    }
    hp_fwd f = {.T = k.T, .ids = k.ids, .seq = k.seq, .pos = k.pos, .n_logits = k.T,
                .logit_rows = k.rows, .logits_out = logits};
    if (hp_forward(rt, &f, &e)) goto done;
    if (o.ids_file) {
        out = calloc((size_t)p.B * Tm * V, sizeof(float));
        if (!out) {
            hp_errf(&e, "out of memory");
            goto done;
        }
        size_t t = 0;
        for (int b = 0; b < p.B; b++)
            for (int i = 0; i < p.len[b]; i++, t++)
                memcpy(out + ((size_t)b * Tm + i) * V, logits + t * V, sizeof(float) * V);
        int64_t shape[3] = {p.B, Tm, V};
        if (hp_npy_write_f32(o.out, out, 3, shape, &e)) goto done;
    } else {
        int64_t shape[2] = {k.T, V};
        if (hp_npy_write_f32(o.out, logits, 2, shape, &e)) goto done;
    }
    if (!o.quiet) fprintf(stderr, "wrote %s\n", o.out);
    rc = 0;
done:
    if (rc) hp_cli_fail(&e);
    free(logits);
    free(out);
    hp_runtime_free(rt);
    unpack_free(&k);
    hp_prompts_free(&p);
    hp_cli_close(m);
    return rc;
}

/* ---------------------------------------------------------------- capture */
int cmd_capture(int argc, char **argv) {
    static const struct option lo[] = {COMMON_LONGOPTS, {"positions", required_argument, 0, O_POSITIONS}, {0}};
    common_opts o;
    common_init(&o);
    const char *positions = "mean";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == O_HELP) {
            printf("usage: headpursuit capture MODEL (--text T | --ids 1,2 | --ids-file F.json) --out H.npy\n"
                   "                  [--positions mean|last]\n"
                   "Each head's contribution to the residual stream (its attention output times its\n"
                   "slice of W_O), aggregated over the prompt: the mean over all tokens (default) or\n"
                   "the last token. Writes float32 [B, L, H, D].\n%s", COMMON_HELP);
            return 0;
        }
        if (c == O_POSITIONS) positions = optarg;
        else if (!common_opt(&o, c, "capture")) return 2;
    }
    if (hp_opt_one_arg("capture", "MODEL", argc, argv) || check_common(&o, "capture", "--text")) return 2;
    if (!o.out) {
        fprintf(stderr, "headpursuit capture: need --out H.npy (see headpursuit capture --help)\n");
        return 2;
    }
    int last = !strcmp(positions, "last");
    if (!last && strcmp(positions, "mean")) {
        fprintf(stderr, "headpursuit capture: --positions '%s': expected mean or last\n", positions);
        return 2;
    }
    hp_err e = {0};
    hp_model *m = hp_cli_open(argv[optind], o.device, o.quiet, &e);
    if (!m) return hp_cli_fail(&e);
    hp_prompts p = {0};
    packed k = {0};
    hp_runtime *rt = NULL;
    float *w = NULL, *cap = NULL;
    int rc = 1;
    if (gather_prompts(&o, m, &p, &e)) goto done;
    if (apply_edits(&o, m, &e)) goto done;
    if (pack(&p, &k, &e)) goto done;
    const hp_config *cf = &m->cfg;
    size_t per = (size_t)cf->L * cf->H * cf->D;
    rt = hp_runtime_create(m, p.B, max_len(&p), k.T < 256 ? k.T : 256, p.B, &e);
    w = malloc(sizeof(float) * k.T);
    cap = calloc((size_t)p.B * per, sizeof(float));
    if (!rt || !w || !cap) {
        if (!e.msg[0]) hp_errf(&e, "out of memory");
        goto done;
    }
    for (int t = 0; t < k.T; t++) {
        int b = k.seq[t], n = p.len[b];
        w[t] = last ? (k.pos[t] == n - 1 ? 1.0f : 0.0f) : 1.0f / (float)n;
    }
    hp_fwd f = {.T = k.T, .ids = k.ids, .seq = k.seq, .pos = k.pos, .cap_w = w, .cap_B = p.B, .cap_out = cap};
    if (hp_forward(rt, &f, &e)) goto done;
    int64_t shape[4] = {p.B, cf->L, cf->H, cf->D};
    if (hp_npy_write_f32(o.out, cap, 4, shape, &e)) goto done;
    if (!o.quiet) fprintf(stderr, "wrote %s [%d, %d, %d, %d]\n", o.out, p.B, cf->L, cf->H, cf->D);
    rc = 0;
done:
    if (rc) hp_cli_fail(&e);
    free(w);
    free(cap);
    hp_runtime_free(rt);
    unpack_free(&k);
    hp_prompts_free(&p);
    hp_cli_close(m);
    return rc;
}

/* ---------------------------------------------------------------- generate */
int cmd_generate(int argc, char **argv) {
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"prompt", required_argument, 0, O_PROMPT},
                                       {"chat", no_argument, 0, O_CHAT},
                                       {"template", required_argument, 0, O_TEMPLATE},
                                       {"system", required_argument, 0, O_SYSTEM},
                                       {"max-new", required_argument, 0, O_MAX_NEW},
                                       {"no-eos", no_argument, 0, O_NO_EOS},
                                       {0}};
    common_opts o;
    common_init(&o);
    const char *tmpl = NULL, *system = NULL;
    int chat = 0, max_new = 64, no_eos = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_HELP:
            printf("usage: headpursuit generate MODEL (--prompt T | --ids 1,2 | --ids-file F.json)\n"
                   "                   [--chat] [--template chatml|mistral|gemma|none] [--system S]\n"
                   "                   [--max-new N] [--no-eos] [--json]\n"
                   "Greedy generation with a KV cache; stops at EOS or after N new tokens (default 64).\n"
                   "  --chat            wrap the prompt in the model's chat template (ChatML for\n"
                   "                    SmolLM2, [INST] for Mistral); --template overrides the choice\n"
                   "  --system S        system prompt (ChatML; default: the model's own default)\n"
                   "  --no-eos          never stop at EOS\n"
                   "  --json            one JSON object per prompt: {\"ids\": [...], \"text\": \"...\"}\n%s",
                   COMMON_HELP);
            return 0;
        case O_PROMPT: o.text = optarg, o.text_flag = "--prompt"; break;
        case O_CHAT: chat = 1; break;
        case O_TEMPLATE: tmpl = optarg; chat = 1; break;
        case O_SYSTEM: system = optarg; break;
        case O_MAX_NEW:
            if (hp_opt_int("generate", "--max-new", optarg, 1, INT_MAX, &max_new)) return 2;
            break;
        case O_NO_EOS: no_eos = 1; break;
        default:
            if (!common_opt(&o, c, "generate")) return 2;
        }
    }
    if (hp_opt_one_arg("generate", "MODEL", argc, argv) || check_common(&o, "generate", "--prompt")) return 2;
    int kind = -1;
    if (tmpl && (kind = hp_chat_parse(tmpl)) < 0) {
        fprintf(stderr, "headpursuit generate: unknown --template '%s' (chatml, mistral, gemma, none)\n", tmpl);
        return 2;
    }
    hp_err e = {0};
    hp_model *m = hp_cli_open(argv[optind], o.device, o.quiet, &e);
    if (!m) return hp_cli_fail(&e);
    hp_prompts p = {0};
    int32_t **outs = NULL;
    int *outn = NULL, rc = 1;
    char *formatted = NULL;
    if (chat && o.text) {
        formatted = hp_chat_format(m, kind >= 0 ? (hp_chat_kind)kind : m->chat, system, o.text);
        if (!formatted) {
            hp_errf(&e, "out of memory");
            goto done;
        }
        /* The template writes its own special tokens. */
        if (hp_prompts_add_text(&p, m, formatted, 0, &e) ||
            hp_prompts_fit(&p, hp_prompt_cap(m, o.max_prompt), "--prompt (in the chat template)", &e))
            goto done;
    } else if (gather_prompts(&o, m, &p, &e)) {
        goto done;
    }
    if (apply_edits(&o, m, &e)) goto done;
    outs = calloc((size_t)p.B, sizeof *outs);
    outn = calloc((size_t)p.B, sizeof *outn);
    if (!outs || !outn) {
        hp_errf(&e, "out of memory");
        goto done;
    }
    if (hp_generate(m, p.B, (const int32_t *const *)p.ids, p.len, NULL, max_new, no_eos, outs, outn,
                    !o.quiet, &e))
        goto done;
    for (int b = 0; b < p.B; b++) {
        char *text = m->tok ? hp_tok_decode(m->tok, outs[b], outn[b], 1) : NULL;
        if (o.json) {
            cJSON *j = cJSON_CreateObject();
            cJSON *a = cJSON_AddArrayToObject(j, "ids");
            for (int i = 0; i < outn[b]; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(outs[b][i]));
            if (text) cJSON_AddStringToObject(j, "text", text);
            char *s = cJSON_PrintUnformatted(j);
            puts(s);
            free(s);
            cJSON_Delete(j);
        } else if (text) {
            printf("%s\n", text);
        } else {
            for (int i = 0; i < outn[b]; i++) printf("%s%d", i ? "," : "", outs[b][i]);
            printf("\n");
        }
        free(text);
    }
    rc = 0;
done:
    if (rc) hp_cli_fail(&e);
    for (int b = 0; outs && b < p.B; b++) free(outs[b]);
    free(outs);
    free(outn);
    free(formatted);
    hp_prompts_free(&p);
    hp_cli_close(m);
    return rc;
}
