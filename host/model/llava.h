/* llava.h: LLaVA-NeXT (LlavaNextForConditionalGeneration): the CLIP vision tower, the projector,
 * anyres feature packing with image_newline, and the merge of image features into the language
 * model's input at the image token. The language model is an hp_model loaded from the same
 * directory with the tensor prefix "language_model.". */
#ifndef HP_LLAVA_H
#define HP_LLAVA_H

#include "config.h"
#include "llava_proc.h"
#include "model.h"

#include <stdio.h>

struct cJSON;

/* The decoder config of a LLaVA config.json's text_config, with transformers' defaults for the
 * keys a checkpoint leaves out. */
int hp_llava_text_config(const struct cJSON *root, const char *path, hp_config *c, hp_err *e);

/* ---- configuration ---------------------------------------------------------------------- */

typedef enum hp_act { HP_ACT_GELU = 0, HP_ACT_QUICK_GELU } hp_act;

/* CLIPVisionConfig (vision_config). */
typedef struct hp_clip_config {
    int D;      /* hidden_size */
    int F;      /* intermediate_size */
    int L;      /* num_hidden_layers */
    int H;      /* num_attention_heads */
    int Dh;     /* D / H */
    int C;      /* num_channels */
    int S;      /* image_size: the tile side in pixels */
    int p;      /* patch_size */
    int P;      /* patches per tile, (S/p)^2 */
    int N;      /* positions per tile, P + 1 (CLS first) */
    float eps;  /* layer_norm_eps */
    hp_act act; /* hidden_act of the MLP */
} hp_clip_config;

typedef struct hp_llava_config {
    hp_clip_config vis;
    int Dt;               /* text_config.hidden_size (the projector's output) */
    int feature_layer;    /* vision_feature_layer as written (e.g. -2) */
    int feature_hs;       /* the same as an index into CLIP's hidden_states, 0..L: 0 is the
                             pre_layrnorm output, k the output of encoder layer k; so it is also
                             the number of encoder layers that must run */
    int select_full;      /* vision_feature_select_strategy: 0 "default" (drop CLS), 1 "full" */
    int P_sel;            /* feature rows per tile: P, or N with "full" */
    int image_token;      /* image_token_index */
    hp_act proj_act;      /* projector_hidden_act */
    int proj_bias;        /* multimodal_projector_bias */
    int n_pinpoints;
    int pinpoints[64][2]; /* image_grid_pinpoints as (height, width) */
} hp_llava_config;

/* The vision half of a LLaVA-NeXT config.json (root: the whole parsed file), with transformers
 * 4.46's defaults: CLIPVisionConfig's for keys missing from vision_config, LlavaNextConfig's CLIP-L
 * /336 when vision_config itself is missing. Dt is left for the caller (the text model's D). */
int hp_llava_vision_config(const struct cJSON *root, const char *path, hp_llava_config *c, hp_err *e);
/* The image processor of the model directory dir: its preprocessor_config.json
 * (LlavaNextImageProcessor: size.shortest_edge, crop_size, image_mean/std, rescale_factor,
 * do_rescale/do_normalize; other steps turned off, another resample or other pinpoints are
 * refused by name), or llava-hf's defaults for c's tower when the file is absent. */
int hp_llava_proc_config(const char *dir, const hp_llava_config *c, hp_llava_proc_cfg *pc,
                         hp_err *e);

/* ---- tensors ------------------------------------------------------------------------------ */

/* The vision tower, projector and image_newline, one row each in hp_llava_tensor_table. */
typedef enum hp_lv_role {
    HP_LV_PATCH = 0,  /* [D, C, p, p] conv weight (no bias) */
    HP_LV_CLS,        /* [D] */
    HP_LV_POS,        /* [N, D] */
    HP_LV_PRE_LN_W,   /* [D] */
    HP_LV_PRE_LN_B,   /* [D] */
    HP_LV_LN1_W,      /* per layer [D] */
    HP_LV_LN1_B,      /* [D] */
    HP_LV_WQ,         /* [D, D] */
    HP_LV_BQ,         /* [D] */
    HP_LV_WK,         /* [D, D] */
    HP_LV_BK,         /* [D] */
    HP_LV_WV,         /* [D, D] */
    HP_LV_BV,         /* [D] */
    HP_LV_WO,         /* [D, D] */
    HP_LV_BO,         /* [D] */
    HP_LV_LN2_W,      /* [D] */
    HP_LV_LN2_B,      /* [D] */
    HP_LV_FC1_W,      /* [F, D] */
    HP_LV_FC1_B,      /* [F] */
    HP_LV_FC2_W,      /* [D, F] */
    HP_LV_FC2_B,      /* [D] */
    HP_LV_PROJ1_W,    /* [Dt, D] */
    HP_LV_PROJ1_B,    /* [Dt] */
    HP_LV_PROJ2_W,    /* [Dt, Dt] */
    HP_LV_PROJ2_B,    /* [Dt] */
    HP_LV_NEWLINE,    /* [Dt] */
    HP_LV_COUNT
} hp_lv_role;

typedef struct hp_llava_tensor_spec {
    hp_lv_role role;
    int per_layer;
    const char *hf;  /* name in llava-hf checkpoints (printf format with the layer index) */
    char dim[4];     /* 'D' vision width, 'F' vision MLP, 'N' positions, 'C' channels, 'p' patch
                        side, 'T' text width; 0 ends the shape */
} hp_llava_tensor_spec;

extern const hp_llava_tensor_spec hp_llava_tensor_table[HP_LV_COUNT];
/* Expected shape of a role under a config; returns ndim. */
int hp_llava_tensor_shape(const hp_llava_config *c, hp_lv_role r, int64_t shape[4]);

/* ---- the model ---------------------------------------------------------------------------- */

/* Weights of one CLIP encoder layer: pointers into the vision backend's HP_MEM_WEIGHT block. */
typedef struct hp_clip_layer {
    void *ln1_w, *ln1_b;     /* [D] */
    void *wq, *bq;           /* [D, D], [D] */
    void *wk, *bk;
    void *wv, *bv;
    void *wo, *bo;
    void *ln2_w, *ln2_b;     /* [D] */
    void *fc1_w, *fc1_b;     /* [F, D], [F] */
    void *fc2_w, *fc2_b;     /* [D, F], [D] */
} hp_clip_layer;

/* The vision side runs on its own backend (lv->vbe, usually the language model's): the CPU ops
 * in float32, or the CUDA kernels in bf16 (kernels/vision.cu, cuBLAS products). Its weights
 * are one HP_MEM_WEIGHT allocation there with named pointers; image_newline is also kept on
 * the host in float32 (packing happens on the host). */
typedef struct hp_llava {
    hp_model *m;              /* the language model (owns the tensor store) */
    hp_llava_config cfg;
    hp_llava_proc_cfg proc;   /* the image processor's settings implied by the config */
    hp_backend *vbe;          /* the vision backend (not owned); NULL: weights not loaded */
    void *wblock;             /* the one allocation on vbe holding every vision/projector weight */
    size_t wblock_n;          /* its elements */
    uint64_t n_params;        /* vision + projector + newline parameters in the checkpoint */
    hp_dtype file_dtype;      /* stored dtype of the patch embedding (for info) */
    void *patch_w;            /* [D, C*p*p] (the conv weight, flattened) */
    void *cls;                /* [D] */
    void *pos;                /* [N, D] */
    void *pre_ln_w, *pre_ln_b; /* [D] */
    hp_clip_layer *layers;    /* the first feature_hs layers (later ones are never used) */
    void *proj1_w, *proj1_b;  /* [Dt, D], [Dt] (bias NULL without multimodal_projector_bias) */
    void *proj2_w, *proj2_b;  /* [Dt, Dt], [Dt] */
    void *newline;            /* [Dt] on vbe */
    float *newline_host;      /* [Dt] float32 on the host */
    struct hp_llava_ws *ws;   /* activation buffers on vbe, grown on demand, reused per image */
} hp_llava;

/* dir: a LlavaNextForConditionalGeneration directory (config.json + safetensors). Loads the
 * language model onto be (hp_model_load) and the vision tower, projector and image_newline onto
 * the same backend; every tensor's shape is checked against the config first. be == NULL: open
 * and check only (no weights). */
hp_llava *hp_llava_load(const char *dir, hp_backend *be, hp_err *e);
/* The same with the two halves placed apart: the language model onto lm_be (NULL: checked
 * only), the vision weights onto vis_be (NULL: not loaded), e.g. features without the decoder. */
hp_llava *hp_llava_open(const char *dir, hp_backend *lm_be, hp_backend *vis_be, hp_err *e);
/* A LLaVA-NeXT with random weights from configs alone (benchmarks, GPU tests): the decoder from
 * hp_model_random(text) and the vision tower, projector and newline from a hash of seed (see
 * llava.c's fill_random), all on be. vc: a vision config as hp_llava_vision_config gives it
 * ("default" feature selection); Dt and P_sel are filled in here. No tokenizer. */
hp_llava *hp_llava_random(const hp_llava_config *vc, const hp_config *text, hp_backend *be,
                          uint64_t seed, hp_err *e);
/* Frees the vision weights and the language model (not the backend). */
void hp_llava_free(hp_llava *lv);
/* Architecture, sizes and the vision tensor table, for the `info` command. */
void hp_llava_print_info(const hp_llava *lv, FILE *f);

/* The anyres geometry of an orig_h x orig_w image as the model packs it: the grid of gh x gw
 * tiles (n_tiles = 1 + gh*gw with the base tile) and, after unpadding, the uh x uw patch map
 * whose rows each get an image_newline. Returns the number of image tokens P_sel + uh*(uw+1),
 * or -1 with e set for an empty image. Unpadding keeps the exact floor of the scaled side (see
 * llava.c): transformers 4.46's model wherever it works (its float rounding makes it raise a
 * token/feature mismatch for ~0.02% of sizes), later transformers everywhere; equal to
 * llava_proc's hp_llava_num_image_tokens. */
int hp_llava_geometry(const hp_llava *lv, int orig_h, int orig_w, int *n_tiles, int *gh, int *gw,
                      int *uh, int *uw, hp_err *e);

/* CLIP over n_tiles tiles pixels [n_tiles, C, S, S] (normalised, host float32): out (host)
 * [n_tiles, P_sel, D] = hidden_states[feature_hs] without CLS ("default") or with it ("full"). */
int hp_llava_tower(const hp_llava *lv, const float *pixels, int n_tiles, float *out, hp_err *e);
/* The projector on host float32 rows: out [rows, Dt] = linear_2(act(linear_1(in [rows, D]))). */
int hp_llava_project(const hp_llava *lv, const float *in, int rows, float *out, hp_err *e);
/* pack_image_features for one image: proj [n_tiles, P_sel, Dt] -> out [n, Dt]: the base tile's
 * rows, then the grid tiles as one (gh*side) x (gw*side) map, unpadded to the original aspect,
 * row by row each followed by image_newline. out holds hp_llava_geometry(...) rows. */
int hp_llava_pack(const hp_llava *lv, const float *proj, int n_tiles, int orig_h, int orig_w,
                  float *out, int *n, hp_err *e);
/* All three for one preprocessed image: *feats (malloc'd) [*n, Dt], the rows that replace the
 * image tokens. px->n_tiles and px->size must match the config. */
int hp_llava_image_features(const hp_llava *lv, const hp_pixels *px, float **feats, int *n,
                            hp_err *e);

/* Token ids with the image placeholder: ids hold either ONE image token (expanded here to n_feat
 * copies) or exactly n_feat of them (already expanded, as transformers >= 4.45's processor
 * writes them; kept). *out (malloc'd, *out_n ids) and *pos (malloc'd, n_feat positions of the
 * image tokens in *out, in order: the rows that get feature i). */
int hp_llava_expand(const hp_llava *lv, const int32_t *ids, int n, int n_feat, int32_t **out,
                    int *out_n, int32_t **pos, hp_err *e);

/* The llava-v1.6-mistral prompt for one image: "[INST] <image>\n{user_text} [/INST]" encoded with
 * BOS, the image token expanded to the image's feature count, and inj filled with the image
 * token positions and their features (inj->pos, inj->emb malloc'd: hp_llava_inject_free). Needs
 * the model's tokenizer (tokenizer.json with "<image>" as an added token). */
int hp_llava_prompt(const hp_llava *lv, const char *user_text, const hp_pixels *px, int32_t **ids,
                    int *n, hp_inject *inj, hp_err *e);
void hp_llava_inject_free(hp_inject *inj);

#endif
