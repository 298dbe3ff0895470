/* The table of subcommands. Each command lives in cli/cmd_<name>.c. */
#include "cli/cli.h"

#include <stddef.h>
#include <string.h>

int cmd_version(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_ckpt(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_shard(int argc, char **argv);
int cmd_corpus(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_fill_mask(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);

const cli_command cli_commands[] = {
    {"help", "show commands, one command's options and examples, or the manual page",
     "usage: ddpt help [COMMAND]\n"
     "       ddpt help --man\n"
     "Prints the commands, or COMMAND's usage, description and examples (as\n"
     "`ddpt COMMAND --help` does). --man prints the manual page ddpt(1) in roff,\n"
     "made from these same texts; the build installs it (man ddpt).\n"
     "Examples:\n"
     "  ddpt help shard\n"
     "  ddpt help --man | man -l -\n",
     cmd_help},
    {"version", "print ddpt's version and the libraries it runs with",
     "usage: ddpt version\n"
     "Prints ddpt's version and git revision, then the versions of Open MPI,\n"
     "HDF5, OpenBLAS (with the kernel it selected), LevelDB and utf8proc.\n"
     "Example:\n"
     "  ddpt version\n",
     cmd_version},
    {"tokenize", "BERT WordPiece tokens or ids of a text, one line per input line",
     "usage: ddpt tokenize --vocab FILE [--cased] [--ids] [--out FILE] [--threads T] [FILE|-]\n"
     "Tokenizes FILE (default: standard input) exactly as google-research/bert's\n"
     "FullTokenizer does: one output line per input line, tokens separated by\n"
     "single spaces (ids with --ids). Lowercases and strips accents unless\n"
     "--cased. --out writes to FILE (via a temporary name, renamed when complete)\n"
     "instead of stdout. --threads (1..256, default: all CPUs) tokenizes that many\n"
     "1 MiB chunks of lines at once and never changes the output.\n"
     "Examples:\n"
     "  echo \"Hello, world!\" | ddpt tokenize --vocab vocab.txt\n"
     "  ddpt tokenize --vocab vocab.txt --ids --out ids.txt text.txt\n",
     cmd_tokenize},
    {"vocab", "train a WordPiece vocab.txt from raw text",
     "usage: ddpt vocab --size N [--min-frequency K] [--cased] [--out vocab.txt] FILE|DIR...\n"
     "Trains a BERT WordPiece vocabulary of at most N tokens: [PAD] [UNK] [CLS]\n"
     "[SEP] [MASK], every character seen at least K times (default 1) with its\n"
     "## form, then pieces merged by BPE pair counts (pairs seen at least\n"
     "max(K, 2) times). Directories are read recursively, in byte order of names,\n"
     "skipping entries whose name starts with '.' (the files ddpt shard reads).\n"
     "Lowercases and strips accents unless --cased (use the same option with\n"
     "ddpt tokenize). Loads the vocab as ddpt tokenize will, reports the [UNK]\n"
     "rate it gives on the training text, and only then writes --out (default\n"
     "vocab.txt), atomically.\n"
     "Example:\n"
     "  ddpt vocab --size 8000 --min-frequency 3 --out vocab.txt text/\n",
     cmd_vocab},
    {"shard", "tokenize text (or labelled examples) into a LevelDB corpus",
     "usage: ddpt shard --vocab FILE --out DIR --shards N --seq-len L [--format lines|docs|fortune]\n"
     "                  [--nsp] [--valid-fraction F | --valid FILE] [--seed S] [--cased]\n"
     "                  [--threads T] [--overwrite] INPUT...\n"
     "       ddpt shard --task classify|tag --vocab FILE --out DIR --shards N --seq-len L\n"
     "                  [--format tsv|jsonl|conll] [--labels FILE] [--valid FILE |\n"
     "                  --valid-fraction F] [--truncate] [--label-all-pieces] [--seed S]\n"
     "                  [--cased] [--threads T] [--overwrite] INPUT...\n"
     "INPUT: files, directories (read recursively in byte order of names, skipping\n"
     "entries whose name starts with '.', as ddpt vocab does) or - for stdin.\n"
     "--format lines: one document per line (default); docs: one sentence per\n"
     "line, a blank line between documents; fortune: documents separated by '%'.\n"
     "Packs sentences greedily into [CLS] ... [SEP] sequences of up to L tokens\n"
     "(8..512), or with --nsp into BERT sentence pairs with next-sentence labels.\n"
     "Sequences go round-robin to N shards; --valid-fraction sends that share of\n"
     "whole documents to a validation shard; or --valid FILE (a file or directory\n"
     "in --format) is the validation split, e.g. documents held out before some\n"
     "training files were repeated. --seed (default 0) fixes NSP pairing and the\n"
     "validation split; --threads (default: all CPUs) never changes the output.\n"
     "Refuses a non-empty DIR unless --overwrite. manifest.json is\n"
     "written last: a DIR without it is an incomplete corpus.\n"
     "Labelled corpora for fine-tuning (the second form; --task pretrain is the\n"
     "first): one example per sequence, never packed.\n"
     "--task classify reads label<TAB>text or label<TAB>text_a<TAB>text_b (tsv), or\n"
     "JSON lines {\"text\", \"text_b\", \"label\"} (jsonl; the default for *.jsonl and\n"
     "*.json files). --task tag reads CoNLL: word ... tag per line, a blank line\n"
     "between sentences; the first piece of a word gets its tag, the rest are\n"
     "ignored (--label-all-pieces: they get the same tag). Labels are sorted (by\n"
     "number when all are integers) unless --labels FILE gives them, one per line\n"
     "in id order. An unknown label, a malformed line or an example longer than L\n"
     "(unless --truncate) fails naming file:line. --valid FILE: the validation\n"
     "examples, in the same format.\n"
     "Examples:\n"
     "  ddpt shard --vocab vocab.txt --out corpus --shards 4 --seq-len 128 text/\n"
     "  ddpt shard --vocab vocab.txt --out corpus --shards 8 --seq-len 512 --nsp \\\n"
     "      --format docs --valid-fraction 0.01 wiki/\n"
     "  ddpt shard --task classify --vocab vocab.txt --out reviews --shards 2 \\\n"
     "      --seq-len 128 --valid dev.tsv train.tsv\n",
     cmd_shard},
    {"corpus", "inspect a sharded corpus: info, verify, sample",
     "usage: ddpt corpus info DIR\n"
     "       ddpt corpus verify [--vocab FILE] DIR\n"
     "       ddpt corpus sample [--world W] [--rank R] [--batch B] [--steps K] [--seed S]\n"
     "                          [--state FILE] [--masks] [--whole-word]\n"
     "                          [--max-predictions P] [--vocab FILE] DIR\n"
     "info prints the manifest. verify reads every record of every shard and\n"
     "checks keys, record lengths, ids against the vocab size, counts and the\n"
     "vocab hash (and --vocab's). sample prints, per step, the samples of rank\n"
     "R's batch as shard:index (with --masks: [position=input id,...] after each);\n"
     "--state loads the per-shard data state from FILE if it exists and saves it\n"
     "after the last step.\n"
     "Examples:\n"
     "  ddpt corpus info corpus\n"
     "  ddpt corpus verify --vocab vocab.txt corpus\n"
     "  ddpt corpus sample --world 2 --rank 1 --batch 4 --steps 3 --masks corpus\n",
     cmd_corpus},
    {"model", "a model's parameter count and memory for a batch size",
     "usage: ddpt model info [--preset bert-tiny|bert-mini|bert-small|bert-medium|bert-base]\n"
     "                       [--config config.json] [--set KEY=VALUE]... [--batch B]\n"
     "                       [--seq-len L] [--max-predictions P] [--precision fp32|bf16]\n"
     "Prints the parameter count and the memory of parameters, gradients, Adam\n"
     "state and activations for batches of B x L (default 8 x 128) with up to P\n"
     "predicted tokens per sequence (default ceil(0.15 L), as ddpt train sizes\n"
     "it). --preset: bert-tiny, bert-mini,\n"
     "bert-small, bert-medium, bert-base (default). --config reads a HuggingFace\n"
     "config.json; --set overrides one field by its config.json key\n"
     "(num_hidden_layers=6, hidden_dropout_prob=0, nsp=false, ...).\n"
     "--precision bf16 adds the bf16 copy of the weights and the bf16 operand\n"
     "buffers of its products (fp32 weights, gradients and Adam state stay).\n"
     "Examples:\n"
     "  ddpt model info --preset bert-base --batch 32 --seq-len 512\n"
     "  ddpt model info --config bert-base-chinese/config.json --set num_hidden_layers=6\n",
     cmd_model},
    {"bench", "time full training steps on synthetic batches",
     "usage: ddpt bench train [--preset bert-tiny|bert-mini|bert-small|bert-medium|bert-base]\n"
     "                        [--config config.json] [--set KEY=VALUE]... [--batch B]\n"
     "                        [--seq-len L] [--threads T] [--steps K] [--warmup W]\n"
     "                        [--seed S] [--precision fp32|bf16]\n"
     "Times K (default 5, at most 1000) training steps after W (default 1, at\n"
     "most 1000) warm-up steps: forward, backward and an AdamW update, on\n"
     "synthetic batches of B x L (default 8 x 128) with 15% of tokens\n"
     "predicted. Prints one JSON line: config, parameter count, median step\n"
     "time, tokens/s, model FLOP/s, the sgemm throughput measured on this\n"
     "machine, peak RSS against the predicted memory, and the OpenBLAS kernel\n"
     "in use. --threads (default: all CPUs, at most 1024) sets OpenBLAS and\n"
     "OpenMP threads; --seed S (default 1) any 64-bit number. --preset,\n"
     "--config and --set as in ddpt model info. --precision bf16 computes the\n"
     "products in bf16 (oneDNN; its ISA and bf16 peak printed too).\n"
     "Example:\n"
     "  ddpt bench train --preset bert-small --batch 16 --seq-len 128 --threads 8 --steps 10\n",
     cmd_bench},
    {"train", "pretrain a BERT model (under mpirun: data-parallel over the ranks)",
     "usage: ddpt train CONFIG [--init MODEL] [--set SECTION.KEY=VALUE]... [--run-dir DIR]\n"
     "                  [--threads N] [--precision fp32|bf16]\n"
     "       ddpt train --resume RUN_DIR [CONFIG] [--set SECTION.KEY=VALUE]... [--threads N]\n"
     "                  [--precision fp32|bf16]\n"
     "Trains on the corpus [data] corpus names (ready configs: configs/ in the\n"
     "source tree, share/ddpt/configs where ddpt is installed, e.g.\n"
     "/usr/share/ddpt/configs),\n"
     "writing RUN_DIR (default ./run): config.ini (the resolved config, also\n"
     "printed at start), metrics.jsonl, ckpt-<step>.h5 and LATEST. Under\n"
     "`mpirun -np N` each rank is a replica reading its own shards; gradients are\n"
     "averaged, so N ranks give the update of one batch N times larger.\n"
     "--resume continues from RUN_DIR's newest valid checkpoint (config from the\n"
     "checkpoint; --set may change learning rate, steps, intervals).\n"
     "--init starts from a model's weights instead of random ones (continued,\n"
     "domain-adaptive pretraining): a ddpt checkpoint or anything ddpt import\n"
     "reads (a HuggingFace directory, a Google TF checkpoint), with a fresh\n"
     "optimizer and data position. The model config is the init's: a CONFIG\n"
     "without [model] takes it; one with [model] must agree (the error names\n"
     "both values). The corpus must be sharded with the model's vocab.txt.\n"
     "A labelled corpus (ddpt shard --task) is refused: use ddpt finetune.\n"
     "SIGINT/SIGTERM: finish the step, checkpoint, exit 3; a second one aborts.\n"
     "Config keys ([section] key: range):\n"
     "  [model] preset (bert-tiny|mini|small|medium|base), hf_config (config.json),\n"
     "          vocab_size (0: from corpus), hidden_size, num_hidden_layers,\n"
     "          num_attention_heads, intermediate_size, max_position_embeddings,\n"
     "          type_vocab_size, hidden_dropout_prob, attention_probs_dropout_prob,\n"
     "          layer_norm_eps\n"
     "  [data] corpus, max_predictions (0: ceil(mask_prob*seq_len)), mask_prob,\n"
     "         whole_word_mask, eval_batches\n"
     "  [optim] name (adamw|sgd), lr, beta1, beta2, eps, weight_decay,\n"
     "          bias_correction, momentum, clip_norm (0: off), max_nonfinite\n"
     "          Defaults are torch.optim.AdamW's (0.9, 0.999, eps 1e-8, decay 0.01,\n"
     "          bias_correction = true), clip_norm 1.0. bias_correction = false\n"
     "          with eps = 1e-6 is Google BERT's AdamWeightDecayOptimizer: use it\n"
     "          only to reproduce or continue a run made with Google's recipe (with a\n"
     "          short warmup its first updates are ~3x larger; docs/model.md).\n"
     "  [schedule] kind (linear|cosine|constant|piecewise), warmup_steps,\n"
     "             warmup_ratio, points (piecewise: \"STEP:MULT, ...\")\n"
     "  [train] batch_size (per rank), accumulation, steps, tokens, seed, threads,\n"
     "          bucket_mb, hash_every, precision (fp32|bf16: products in bf16 on\n"
     "          oneDNN, fp32 weights and optimizer; --precision sets it; refused on\n"
     "          a CPU without native bf16; docs/model.md)\n"
     "  [checkpoint] every, keep\n"
     "  [log] every, eval_every, level (error|warn|info|debug)\n"
     "Examples:\n"
     "  ddpt train configs/bert-tiny.ini --set data.corpus=corpus --run-dir run\n"
     "  mpirun -np 4 ddpt train configs/bert-tiny.ini --run-dir run --threads 1\n"
     "  mpirun -np 8 ddpt train --resume run --threads 1\n"
     "  ddpt train configs/bert-base.ini --init bert-base-chinese --run-dir dapt\n",
     cmd_train},
    {"finetune", "fine-tune a model for classification or tagging (under mpirun: data-parallel)",
     "usage: ddpt finetune CONFIG --init MODEL [--set SECTION.KEY=VALUE]... [--run-dir DIR]\n"
     "                     [--threads N] [--precision fp32|bf16]\n"
     "       ddpt finetune --resume RUN_DIR [CONFIG] [--set SECTION.KEY=VALUE]... [--threads N]\n"
     "                     [--precision fp32|bf16]\n"
     "Fine-tunes MODEL (a ddpt checkpoint, from pretraining or from an earlier\n"
     "fine-tuning, or anything ddpt import reads) on the labelled corpus [data]\n"
     "corpus names (made by ddpt shard --task classify|tag; a pretraining corpus\n"
     "is refused: use ddpt train). The task and its labels come from the corpus,\n"
     "the encoder's sizes from MODEL (as train --init), the CRF from [finetune].\n"
     "Tensors load by name, as PyTorch's load_state_dict(strict=False) does; it\n"
     "logs what was loaded, what is new (\"classifier.weight [3, 128]\") and what\n"
     "is unused (\"cls.predictions.* (5 tensors)\"); a tensor both have with other\n"
     "shapes fails naming it and both shapes. The loop is ddpt train's: batches,\n"
     "accumulation, mpirun ranks (2 ranks x b = 1 rank x 2b), [schedule] warmup\n"
     "and decay, checkpoints, SIGINT/SIGTERM (exit 3) and --resume bit for bit; a\n"
     "resumed corpus must have the run's labels. Every [log] eval_every steps and\n"
     "at the end (eval_every = 0: at the end only; a corpus without a validation\n"
     "split: never) it scores the whole validation split (classify: accuracy,\n"
     "macro-F1, per-class precision/recall/F1, confusion matrix; tag: token\n"
     "accuracy and conlleval's entity precision/recall/F1), shown on the progress\n"
     "line (\"acc\" and \"f1\": macro-F1, or entity F1) and in metrics.jsonl;\n"
     "each evaluation is checkpointed, and RUN_DIR/BEST names the best by\n"
     "best_metric (kept by [checkpoint] keep). At the end RUN_DIR/report.json\n"
     "holds the task, labels, best and final evaluations with their tables.\n"
     "Config keys: ddpt train's (`ddpt help train`; the masking keys of [data]\n"
     "do not apply), plus:\n"
     "  [finetune] freeze_embeddings (true|false: bert.embeddings.* not trained)\n"
     "             freeze_layers (K: the first K encoder layers not trained)\n"
     "             head_lr (pooler, classifier, crf; 0: [optim] lr)\n"
     "             layer_lr_decay (d in (0, 1], 1: off; layer i of N learns at\n"
     "               lr * d^(N-i), the embeddings at lr * d^(N+1), heads at lr)\n"
     "             crf (true|false: tag with a linear-chain CRF, Viterbi decoding;\n"
     "               its scores start at zero: give it a head_lr well above the\n"
     "               encoder's, e.g. 1e-2 to 3e-2, or it barely learns)\n"
     "             best_metric (accuracy|macro_f1 for classify, token_accuracy|\n"
     "               entity_f1 for tag, loss; auto (default): accuracy, entity_f1\n"
     "               when the tags are BIO/BIOES/BMES, else token_accuracy)\n"
     "Examples:\n"
     "  ddpt finetune classify.ini --init run/ckpt-00000600.h5 --run-dir ft\n"
     "  mpirun -np 2 ddpt finetune classify.ini --init bert-base-chinese --threads 4\n"
     "  mpirun -np 4 ddpt finetune --resume ft --threads 2\n",
     cmd_finetune},
    {"fill-mask", "the most probable tokens at each [MASK] of a text, from a checkpoint",
     "usage: ddpt fill-mask --ckpt FILE [--vocab FILE] [--top-k K] [--json] [--cased]\n"
     "                      [--precision fp32|bf16] TEXT\n"
     "Prints the K (default 5) most probable tokens and their probabilities at\n"
     "each [MASK] of TEXT (quote it), e.g. \"the cat [MASK] on the mat\". The\n"
     "model comes from the checkpoint alone: its config attribute, /params and\n"
     "the vocab (and its casing) that training or ddpt import recorded in it.\n"
     "--vocab is needed only for checkpoints that record none; given anyway,\n"
     "it must be the recorded vocab (SHA-256 compared). --cased overrides the\n"
     "recorded casing (for checkpoints that record none: if the corpus was).\n"
     "The input is [CLS] TEXT [SEP] in segment 0, without dropout; the literal\n"
     "[MASK] is never split. --json prints one object: \"tokens\" (the input)\n"
     "and \"masks\", a list of {\"position\" (0 is [CLS]), \"predictions\": a list\n"
     "of {\"token\", \"id\", \"prob\"}}. Fails (exit 1, one line) when TEXT has no\n"
     "[MASK], is longer than the model's positions, or the files do not fit.\n"
     "--precision bf16 computes the products in bf16 (as [train] precision).\n"
     "Examples:\n"
     "  ddpt fill-mask --ckpt run/ckpt-00000600.h5 \"the cat sat on the [MASK].\"\n"
     "  ddpt fill-mask --ckpt zh.h5 --top-k 3 --json \"北京是中国的[MASK]都。\"\n",
     cmd_fill_mask},
    {"predict", "classify texts or tag words with a fine-tuned checkpoint",
     "usage: ddpt predict --ckpt FILE [--vocab FILE] [--json] [--top-k K] [--batch N]\n"
     "                    [--threads T] [--seq-len L] [--cased] [--precision fp32|bf16]\n"
     "                    [FILE|-]\n"
     "Runs a checkpoint fine-tuned for classify or tag over each line of FILE\n"
     "(default: standard input), N lines (default 32, at most 4096) per forward\n"
     "pass, on T threads (default: all CPUs). One output line per input line; a\n"
     "blank line gets a blank line (with --json: null).\n"
     "classify: a line is a text, or text_a<TAB>text_b (a pair: [CLS] a [SEP] b\n"
     "[SEP]). Prints the K (default 1) most probable labels as label:prob,\n"
     "TAB-separated; --json: {\"label\", \"probs\": {label: p}, \"top\": [{\"label\",\n"
     "\"prob\"}], \"truncated\"}.\n"
     "tag: the words of a line are its whitespace-separated tokens, and each CJK\n"
     "character is a word of its own (as one CoNLL line each); a word's tag is\n"
     "the one at its first piece (with a CRF: the Viterbi path). Prints\n"
     "word/TAG ... then each span as text/TYPE, TAB-separated; --json:\n"
     "{\"tokens\", \"tags\", \"spans\": [{\"type\", \"start\", \"end\" (exclusive),\n"
     "\"text\"}], \"truncated\"}.\n"
     "Inputs are built as ddpt shard --truncate builds training examples: longer\n"
     "than L tokens with [CLS] and [SEP] (default: the fine-tuning corpus's\n"
     "--seq-len, which ddpt finetune records in its checkpoints, so inputs are\n"
     "cut as training's were; else max_position_embeddings), a pair loses pieces from\n"
     "its longer text, a tagged line its last words (left untagged). The vocab,\n"
     "casing and label names come from the checkpoint (--vocab must then be the\n"
     "recorded vocab; --cased: for checkpoints that record no casing). Fails\n"
     "(exit 1, one line naming FILE:LINE for a bad line) on a pretraining\n"
     "checkpoint (use fill-mask), a vocab mismatch, or a line with more than one\n"
     "TAB or an empty text. --precision bf16 computes the products in bf16.\n"
     "Examples:\n"
     "  echo \"a gripping, funny film\" | ddpt predict --ckpt ft/ckpt-00000300.h5\n"
     "  ddpt predict --ckpt ft/ckpt-00000300.h5 --top-k 3 --json reviews.txt\n",
     cmd_predict},
    {"export", "write a checkpoint as a HuggingFace model directory (safetensors)",
     "usage: ddpt export SRC --out DIR [--arch ARCH] [--dtype f32|bf16|f16] [--vocab FILE]\n"
     "                   [--config FILE] [--cased] [--overwrite]\n"
     "Writes DIR/model.safetensors, config.json, vocab.txt, tokenizer_config.json\n"
     "and special_tokens_map.json, as HuggingFace's save_pretrained does, so\n"
     "AutoModel*.from_pretrained(DIR) loads it with no missing or unexpected keys.\n"
     "SRC is a ddpt checkpoint (or anything ddpt import reads). ARCH is\n"
     "BertForPreTraining, BertForMaskedLM, BertForSequenceClassification or\n"
     "BertForTokenClassification; the default follows the heads (with the\n"
     "next-sentence head: BertForPreTraining, else BertForMaskedLM). The decoder\n"
     "weight is tied to the word embeddings and not stored. --dtype narrows the\n"
     "weights (round to nearest even; default f32). --vocab for checkpoints that\n"
     "record no vocab; --config and --cased as ddpt import's, for sources that\n"
     "need them. DIR is built beside itself and renamed into place; an existing\n"
     "non-empty DIR is replaced only with --overwrite.\n"
     "Examples:\n"
     "  ddpt export run/ckpt-00000600.h5 --out hf-model\n"
     "  ddpt export ft/ckpt-00000300.h5 --out hf-classifier --dtype bf16 --overwrite\n",
     cmd_export},
    {"import", "read a HuggingFace or Google TensorFlow BERT into a ddpt checkpoint",
     "usage: ddpt import SRC --out CKPT.h5 [--vocab FILE] [--config FILE] [--cased]\n"
     "                   [--with-optimizer]\n"
     "SRC is a HuggingFace directory (config.json, model.safetensors or a sharded\n"
     "model.safetensors.index.json, vocab.txt, tokenizer_config.json), a single\n"
     ".safetensors file (config.json beside it, or --config), or a Google BERT\n"
     "TensorFlow checkpoint: the prefix bert_model.ckpt (its .index and .data-*\n"
     "files) with bert_config.json and vocab.txt beside it, or the directory\n"
     "holding them. F32, F16 and BF16 become float32 exactly; TF kernels are\n"
     "transposed; legacy LayerNorm.gamma/beta and BertModel names without\n"
     "'bert.' are accepted; Adam slots and global_step are skipped (with\n"
     "--with-optimizer a TF checkpoint's adam_m/adam_v become /optim/m and\n"
     "/optim/v, every variable needing both). Prints what\n"
     "was loaded, renamed, skipped, left unused and initialised fresh (a\n"
     "BertModel has no MLM head). Writes a weights-only checkpoint with the\n"
     "model config and the vocab recorded, for ddpt train --init, finetune,\n"
     "fill-mask and export. pytorch_model.bin (a pickle) is not read: convert\n"
     "it with scripts/torch_to_safetensors.py. --cased: the tokenizer keeps case\n"
     "(for sources without tokenizer_config.json). CKPT must not exist.\n"
     "Examples:\n"
     "  ddpt import bert-base-chinese --out bert-base-chinese.h5\n"
     "  ddpt import chinese_L-12_H-768_A-12/bert_model.ckpt --out zh.h5 --with-optimizer\n",
     cmd_import},
    {"ckpt", "inspect, verify, compare and upgrade checkpoints",
     "usage: ddpt ckpt info FILE\n"
     "       ddpt ckpt verify FILE\n"
     "       ddpt ckpt diff A B\n"
     "       ddpt ckpt upgrade OLD NEW\n"
     "info prints the root attributes (step, tokens_seen, world_size, seed,\n"
     "model_type, ddpt version, created, config) and every dataset with its type,\n"
     "shape and L2 norm. verify reads every dataset in full, so every Fletcher-32\n"
     "checksum is checked, and checks the attributes, the element types and that\n"
     "optim/m and optim/v match params name for name and shape for shape; it exits\n"
     "0 when the file is sound, 1 naming the first dataset at fault otherwise.\n"
     "diff compares the datasets of A and B by path and prints each one's maximum\n"
     "absolute difference, shapes that differ and paths present in only one file\n"
     "(attributes are not compared). Exit status: 0 when A and B hold the same\n"
     "datasets bit for bit, 1 when they differ (or one cannot be read: then one\n"
     "line on stderr says why). upgrade rewrites a checkpoint whose string\n"
     "attributes are variable-length (written by ddpt before they became\n"
     "fixed-length, or by h5py from str), which the other commands refuse, as NEW\n"
     "(which must not exist), then verifies NEW. It trusts OLD's HDF5 global heap,\n"
     "which has no checksum: upgrade only files you trust. See docs/checkpoint.md.\n"
     "Examples:\n"
     "  ddpt ckpt info run/ckpt-00000600.h5\n"
     "  ddpt ckpt verify run/ckpt-00000600.h5\n"
     "  ddpt ckpt diff a/ckpt-00000600.h5 b/ckpt-00000600.h5\n"
     "  ddpt ckpt upgrade old/ckpt-00000600.h5 run/ckpt-00000600.h5\n",
     cmd_ckpt},
    {NULL, NULL, NULL, NULL},
};

const cli_command *cli_find(const char *name) {
  for (const cli_command *c = cli_commands; c->name; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}
