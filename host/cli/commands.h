/* commands.h: the subcommands of the headpursuit binary. Each takes the arguments after its
 * name, prints its own --help, and returns the process exit code. */
#ifndef HP_COMMANDS_H
#define HP_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_somp(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_rank(int argc, char **argv);
int cmd_heads(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_llava_features(int argc, char **argv);
int cmd_llava_logits(int argc, char **argv);
int cmd_toxicity(int argc, char **argv);

#endif
