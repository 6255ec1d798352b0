/* chat.c: chat templates. The model's template is not interpreted (no Jinja engine): the
 * families this tool targets are formatted directly, and ChatML's default system prompt is read
 * out of the GGUF template text so the prompt matches what the model was tuned with. */
#include "chat.h"

#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>

int hp_chat_parse(const char *name) {
    if (!strcmp(name, "chatml")) return HP_CHAT_CHATML;
    if (!strcmp(name, "mistral")) return HP_CHAT_MISTRAL;
    if (!strcmp(name, "gemma")) return HP_CHAT_GEMMA;
    if (!strcmp(name, "none")) return HP_CHAT_NONE;
    return -1;
}

const char *hp_chat_name(hp_chat_kind k) {
    return k == HP_CHAT_CHATML ? "chatml" : k == HP_CHAT_MISTRAL ? "mistral" : k == HP_CHAT_GEMMA ? "gemma" : "none";
}

char *hp_chat_default_system(const hp_model *m) {
    if (!m->store.gguf) return NULL;
    const char *tpl = hp_gguf_get_str(m->store.gguf, "tokenizer.chat_template");
    const char *key = "<|im_start|>system\\n";
    const char *s = tpl ? strstr(tpl, key) : NULL;
    if (!s) return NULL;
    s += strlen(key);
    const char *end = strstr(s, "<|im_end|>");
    if (!end || memchr(s, '{', (size_t)(end - s))) return NULL; /* a variable, not a default */
    char *out = strndup(s, (size_t)(end - s));
    return out;
}

char *hp_chat_format(const hp_model *m, hp_chat_kind k, const char *system, const char *user) {
    char *out = NULL;
    int rc = 0;
    if (k == HP_CHAT_CHATML) {
        char *def = system ? NULL : hp_chat_default_system(m);
        const char *sys = system ? system : def;
        if (sys)
            rc = asprintf(&out, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n"
                          "<|im_start|>assistant\n", sys, user);
        else
            rc = asprintf(&out, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", user);
        free(def);
    } else if (k == HP_CHAT_MISTRAL) {
        /* Mistral-Instruct has no system role: a system text is prepended to the user turn. */
        const char *bos = (m->tok && hp_tok_bos(m->tok) >= 0) ? hp_tok_piece(m->tok, hp_tok_bos(m->tok)) : "";
        rc = asprintf(&out, "%s[INST] %s%s%s [/INST]", bos ? bos : "", system ? system : "",
                      system ? "\n\n" : "", user);
    } else if (k == HP_CHAT_GEMMA) {
        /* Gemma 3's template: <bos>, turns between <start_of_turn>ROLE\n and <end_of_turn>\n; no
         * system role: a system text opens the first user turn, followed by a blank line. */
        const char *bos = (m->tok && hp_tok_bos(m->tok) >= 0) ? hp_tok_piece(m->tok, hp_tok_bos(m->tok)) : "";
        rc = asprintf(&out, "%s<start_of_turn>user\n%s%s%s<end_of_turn>\n<start_of_turn>model\n",
                      bos ? bos : "", system ? system : "", system ? "\n\n" : "", user);
    } else {
        out = strdup(user);
    }
    return rc < 0 ? NULL : out;
}
