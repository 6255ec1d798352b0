/* main.c: the headpursuit command line: dispatches to one subcommand. */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *what;
} command;

static const command commands[] = {
    {"info", cmd_info, "architecture, sizes, dtypes and tokenizer of a model"},
    {"tokenize", cmd_tokenize, "token ids of a text, as JSON"},
    {"logits", cmd_logits, "float32 logits of every position, as .npy"},
    {"generate", cmd_generate, "greedy generation (chat template, head edits)"},
    {"capture", cmd_capture, "per-head residual contributions of prompts, as .npy"},
    {"rank", cmd_rank, "score every head for a concept (SOMP and Logit Lens)"},
    {"heads", cmd_heads, "the tokens each head writes (SOMP over the vocabulary)"},
    {"eval", cmd_eval, "edit the top heads and evaluate (QA, toxicity, vision) against controls"},
    {"run", cmd_run, "the whole experiment of an EXPERIMENT.json: cached stages, one report"},
    {"toxicity", cmd_toxicity, "score texts with the exported profanity classifier"},
    {"somp", cmd_somp, "Simultaneous Orthogonal Matching Pursuit on any matrices"},
    {"llava-features", cmd_llava_features, "LLaVA-NeXT image features of pixel tiles, as .npy"},
    {"llava-logits", cmd_llava_logits, "LLaVA-NeXT logits of a prompt with one image, as .npy"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: headpursuit COMMAND [options]   (headpursuit COMMAND --help for each)\n\n"
               "Find and edit the attention heads of a transformer that specialise in a concept\n"
               "(Head Pursuit, NeurIPS 2025). MODEL is a directory with config.json, tokenizer.json\n"
               "and safetensors, or a .gguf file. GGUF weight matrices stay in their stored type on\n"
               "the CPU; --weights-f32 (with any command) converts them to float32 instead.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
}

int main(int argc, char **argv) {
    hp_cpu_thread_policy(argv); /* may restart the program once (host/backend.h) */
    /* --weights-f32, accepted by every command that loads a model: the float32 reference path. */
    int k = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--weights-f32")) hp_cli_weights_f32 = 1;
        else argv[k++] = argv[i];
    }
    argc = k;
    argv[argc] = NULL;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "headpursuit: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
