"""SentencePiece models made by the real SentencePiece library, and the ids it gives, for the tokenizer tests.

Trains two small models on the text of ../shared/data (SMS spam and TREC training sentences) with the options of the
published checkpoints' own tokenizers, then encodes a set of texts (data rows and hand-picked hard cases) with
SentencePiece itself, adding the special tokens as transformers' slow tokenizers do:

- llama/tokenizer.model: BPE with byte fallback, digits split, no normalisation, extra spaces kept, as Llama-2's,
  Mistral's and TinyLlama's tokenizer.model (<unk> 0, <s> 1, </s> 2); LlamaTokenizer puts <s> first.
- deberta-v3/spm.model: Unigram with the nmt_nfkc normaliser, as DeBERTa-v3's spm.model ([PAD] 0, [CLS] 1,
  [SEP] 2, [UNK] 3, [MASK] after the pieces); DebertaV2Tokenizer gives [CLS] pieces [SEP].

    apt-get install python3-sentencepiece
    /usr/bin/python3 make_fixtures.py ../../../../../shared        # run in this folder

Writes <model>/config.json, the tokenizer files and cases.json: {"texts": [...], "input_ids": [[...], ...]}, where a
text is either the text itself (the hard cases) or {"file": ..., "line": ...}: a row of ../shared/data, read as
SOURCES says (the text after the row's first separator).
A rerun writes the same files (SentencePiece's trainer is deterministic on one thread).
"""

import json
import os
import sys

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 1000

HARD = [
    "hello world",
    "  two leading spaces, three   inside and two trailing  ",
    "tabs\tand\nnewlines\r\nmixed",
    "Numbers: 3.14159, 1,000,000 and 2026-12-06",
    "Accents: café naïve résumé Ångström façade",
    "Full-width ＡＢＣ１２３ and the ligature ﬁne (NFKC folds both)",
    "CJK 東京 and 한국어 are unseen here",
    "Emoji 😀👍🏽 and symbols ™ © € £ ¥",
    "ALL CAPS SHOUTING!!! and lower case",
    "URL http://example.com/a?b=c&d=e and e-mail me@example.org",
    "",
    " ",
    "a",
    "What is the capital of France ?",
    "don't won't can't it's",
    "\u00a0non-breaking\u00a0spaces\u2009thin\u200bzero-width",
    "Pipes || between | words and arrows>> here << there",
    "Brackets {like} these ~ and ^carets^ with `ticks`",
]


# The data rows: (file under ../shared/data, encoding, field separator); a row's text is what follows the first
# separator. cases.json names the rows (file and line number) rather than copying their text.
SOURCES = [("sms_spam/SMSSpamCollection", "utf-8", "\t"), ("trec/train_5500.label", "latin-1", " ")]


def corpus(shared):
    """Every data row as ({"file", "line"}, text)."""
    rows = []
    for name, encoding, separator in SOURCES:
        with open(os.path.join(shared, "data", name), encoding=encoding, newline="\n") as f:
            for number, line in enumerate(f):
                line = line.rstrip("\n")
                if separator in line:
                    rows.append(({"file": name, "line": number}, line.split(separator, 1)[1]))
    return rows


def train(lines, prefix, **options):
    # From an iterator, so the model records no input file name and a rerun writes the same bytes.
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=VOCAB, num_threads=1,
                                   minloglevel=2, **options)
    os.unlink(prefix + ".vocab")
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "..", "..", "shared")
    rows = corpus(shared)
    lines = [text for _, text in rows]
    picked = rows[::97][:120]
    texts = HARD + [text for _, text in picked]
    listed = HARD + [source for source, _ in picked]

    folder = os.path.join(HERE, "llama")
    os.makedirs(folder, exist_ok=True)
    sp = train(lines, os.path.join(folder, "tokenizer"), model_type="bpe", byte_fallback=True, split_digits=True,
               normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
               allow_whitespace_only_pieces=True, character_coverage=0.9995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    write_json(os.path.join(folder, "tokenizer_config.json"), {
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
        "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None, "legacy": False})
    write_json(os.path.join(folder, "config.json"), {
        "architectures": ["LlamaForSequenceClassification"], "model_type": "llama", "vocab_size": VOCAB,
        "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "bos_token_id": 1,
        "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": False})
    write_json(os.path.join(folder, "cases.json"),
               {"texts": listed, "input_ids": [[1] + sp.encode(t) for t in texts]})

    folder = os.path.join(HERE, "deberta-v3")
    os.makedirs(folder, exist_ok=True)
    sp = train(lines, os.path.join(folder, "spm"), model_type="unigram", normalization_rule_name="nmt_nfkc",
               character_coverage=0.9995, pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece="[PAD]",
               bos_piece="[CLS]", eos_piece="[SEP]", unk_piece="[UNK]")
    write_json(os.path.join(folder, "tokenizer_config.json"),
               {"do_lower_case": False, "vocab_type": "spm", "tokenizer_class": "DebertaV2Tokenizer"})
    write_json(os.path.join(folder, "special_tokens_map.json"), {
        "bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "mask_token": "[MASK]"})
    write_json(os.path.join(folder, "added_tokens.json"), {"[MASK]": VOCAB})
    write_json(os.path.join(folder, "config.json"), {
        "architectures": ["DebertaV2ForSequenceClassification"], "model_type": "deberta-v2", "vocab_size": VOCAB + 1,
        "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4,
        "max_position_embeddings": 512, "type_vocab_size": 0, "relative_attention": True, "position_buckets": 8,
        "max_relative_positions": -1, "pos_att_type": ["p2c", "c2p"], "share_att_key": True,
        "norm_rel_ebd": "layer_norm", "position_biased_input": False, "pad_token_id": 0, "layer_norm_eps": 1e-7,
        "pooler_hidden_size": 32, "pooler_dropout": 0})
    write_json(os.path.join(folder, "cases.json"),
               {"texts": listed, "input_ids": [[1] + sp.encode(t) + [2] for t in texts]})


if __name__ == "__main__":
    main()
