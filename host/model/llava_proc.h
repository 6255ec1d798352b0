/* llava_proc.h: the LLaVA-NeXT image processor ("anyres"), as transformers'
 * LlavaNextImageProcessor does it: select_best_resolution over image_grid_pinpoints,
 * aspect-preserving resize + centred padding to that resolution, split into crop_size tiles,
 * plus the whole image resized to crop_size as the first tile; bicubic resampling, rescale by
 * rescale_factor (1/255), image_mean/image_std normalisation (CLIP's by default). Also the number of image tokens the packing produces. */
#ifndef HP_LLAVA_PROC_H
#define HP_LLAVA_PROC_H

#include "image.h"

typedef struct hp_llava_proc_cfg {
    int crop;                 /* tile side (vision_config.image_size, 336 for CLIP-L/336) */
    int shortest_edge;        /* resize target of the base image (= crop for llava-next) */
    int patch;                /* vision_config.patch_size (14) */
    int n_pinpoints;
    int pinpoints[64][2];     /* image_grid_pinpoints as (height, width) pairs */
    float mean[3], std[3];    /* CLIP: 0.48145466,0.4578275,0.40821073 / 0.26862954,0.26130258,0.27577711 */
    double rescale;           /* rescale_factor: 1/255 (1 when do_rescale is false) */
} hp_llava_proc_cfg;

/* Defaults of llava-hf/llava-v1.6-mistral-7b-hf's processor for a given crop size. */
void hp_llava_proc_defaults(hp_llava_proc_cfg *c, int crop, int patch);

typedef struct hp_pixels {
    int n_tiles;              /* 1 (base) + grid tiles */
    int size;                 /* crop */
    float *data;              /* [n_tiles, 3, size, size], normalised */
    int orig_h, orig_w;       /* the input image's size */
    int best_h, best_w;       /* the selected resolution */
} hp_pixels;

/* select_best_resolution: the pinpoint that keeps the most effective resolution, then the
 * least waste; returns its index. */
int hp_llava_best_resolution(const hp_llava_proc_cfg *c, int h, int w);
int hp_llava_preprocess(const hp_image *im, const hp_llava_proc_cfg *c, hp_pixels *out, hp_err *e);
/* Number of tiles hp_llava_preprocess produces for this size (1 base + the grid), without
 * decoding or resizing anything; -1 for a non-positive size. */
int hp_llava_num_tiles(const hp_llava_proc_cfg *c, int orig_h, int orig_w);
void hp_pixels_free(hp_pixels *p);

/* Number of image tokens (features after packing: base tile patches + unpadded grid rows each
 * followed by image_newline) that LlavaNextForConditionalGeneration.pack_image_features
 * produces for this image size (vision_feature_select_strategy "default": no CLS); -1 for a
 * non-positive size. Unpadding uses exact integers like current transformers (round(x, 7)) and
 * transformers 4.46's processor; transformers 4.46's model computes it in floats and keeps two
 * rows or columns fewer for ~0.02% of sizes (e.g. h 88, w 55 at crop 336: 936 vs 984 tokens),
 * where 4.46 itself then fails ("Image features and image tokens do not match"). */
int hp_llava_num_image_tokens(const hp_llava_proc_cfg *c, int orig_h, int orig_w);
/* The unpadded grid geometry: the grid of tiles is gh x gw tiles of (crop/patch)^2 patches;
 * after unpadding to the original aspect the feature map is uh x uw patches. */
void hp_llava_unpad_shape(const hp_llava_proc_cfg *c, int orig_h, int orig_w, int *gh, int *gw,
                          int *uh, int *uw);

#endif
