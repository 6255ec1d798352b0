/* imageset.h: image datasets for the vision experiments, read into one struct:
 *   - an image folder: DIR/<class>/<files> (torchvision ImageFolder's layout: class names are the
 *     sub-folder names sorted byte-wise, files found recursively and sorted), or a flat folder of
 *     images with no classes (captioning);
 *   - IDX files (MNIST, Fashion-MNIST, ...): an images file (magic 0x00000803, n x rows x cols
 *     unsigned bytes) and optionally a labels file (0x00000801, n unsigned bytes), big-endian
 *     dimensions, plain or gzip-compressed;
 *   - Flickr30k's caption file (results_20130124.token: "image.jpg#k<TAB>caption" lines) with the
 *     folder that holds the images.
 * Only PNG and JPEG files count as images (other files in a folder are skipped and counted).
 * Errors name the file and the line (captions) or the byte offset (IDX; after decompression
 * for gzip files). */
#ifndef HP_IMAGESET_H
#define HP_IMAGESET_H

#include "common.h"
#include "image.h"

/* IDX element type 0x08 (unsigned byte) is the only one image datasets use; others are refused. */
#define HP_IDX_MAX_DIMS 4

typedef struct hp_idx {
    int ndim;
    int dims[HP_IDX_MAX_DIMS];
    size_t n;      /* elements (product of dims) */
    uint8_t *data; /* n bytes */
} hp_idx;

/* Reads an IDX file of unsigned bytes (gzip or not). expect_magic: 0x801, 0x803, ... or 0 for
 * any unsigned-byte IDX. The data must fill the file exactly (truncation and trailing bytes are
 * errors with their offsets). */
int hp_idx_read(const char *path, uint32_t expect_magic, hp_idx *out, hp_err *e);
void hp_idx_free(hp_idx *x);

typedef struct hp_imageset {
    int n;              /* images */
    int n_classes;      /* 0 when unlabelled */
    char **classes;     /* n_classes names */
    int *label;         /* [n] class index, or -1 (unlabelled) */
    char **file;        /* [n] image file paths (folders, captions); NULL for IDX sets */
    char **name;        /* [n] names for reports: "class/file.png", "file.jpg", "#123" (IDX) */
    char ***captions;   /* [n] reference captions (caption files), else NULL */
    int *n_captions;    /* [n] */
    int w, h;           /* IDX: image size */
    uint8_t *grey;      /* IDX: [n, h, w] pixels */
    int n_skipped;      /* files in folders that were not PNG or JPEG */
    char *source;       /* what was read, for reports (paths) */
} hp_imageset;

/* DIR/<class>/... or a flat folder of images. */
int hp_imageset_load_folder(const char *dir, hp_imageset *out, hp_err *e);
/* IDX images (+ labels, may be NULL). Without class names the classes are "0", "1", ... up to the
 * largest label. */
int hp_imageset_load_idx(const char *images, const char *labels, hp_imageset *out, hp_err *e);
/* Flickr30k: the caption file and the folder holding the images it names (images in file
 * order, each with its captions). */
int hp_imageset_load_captions(const char *token_file, const char *image_dir, hp_imageset *out,
                              hp_err *e);
/* The command-line form: spec is a directory (folder layout, or with captions a caption set) or
 * an IDX images file; labels (may be NULL) an IDX labels file: when NULL for an IDX images file,
 * a labels file named like it ("images" -> "labels", "idx3" -> "idx1") is used if it exists. */
int hp_imageset_open(const char *spec, const char *labels, const char *captions, hp_imageset *out,
                     hp_err *e);
/* Replaces the class names by a word list's lines (one per class, in class order: sorted folder
 * names, or label values 0, 1, ...); the count must match. */
int hp_imageset_set_classes(hp_imageset *s, const char *words_path, hp_err *e);
/* Keeps the images at positions offset .. offset+limit-1 (limit <= 0: all the rest) of an order
 * that takes one image of each class in turn (round robin over classes, each class in file
 * order; unlabelled sets keep file order), so that a prefix is balanced over classes and
 * `--offset` gives disjoint splits. */
int hp_imageset_select(hp_imageset *s, int offset, int limit, hp_err *e);
/* Decodes image i to RGB. */
int hp_imageset_image(const hp_imageset *s, int i, hp_image *out, hp_err *e);
/* FNV-1a hash (16 hex chars) of salt (e.g. the model and options) and the set's class names,
 * names, labels and image bytes: the identity of a dataset for cached representations. */
int hp_imageset_hash(const hp_imageset *s, const char *salt, char out[17], hp_err *e);
void hp_imageset_free(hp_imageset *s);

#endif
