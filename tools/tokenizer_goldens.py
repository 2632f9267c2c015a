#!/usr/bin/env python3
"""Token-id goldens from an independent tokenizer: tiktoken (pip install tiktoken==0.14.0)
with the Qwen3.5 ranks (data/qwen35.tiktoken), its pre-tokenizer regex and its specials.

Reads tests/data/tokenizer/corpus.json (a list of NFC strings: llama.cpp does no NFC
normalisation while tiktoken's users usually do, so the corpus is NFC already) and writes
tests/data/tokenizer/goldens.json: the ids of each string, specials parsed.
Run from the repository root: python3 tools/tokenizer_goldens.py
"""
import base64
import json

import tiktoken

PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"""
       r"""| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
            "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
            "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
            "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
            "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
            "<think>", "</think>", "<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>",
            "<tts_text_eod>", "<tts_text_bos_single>", "<|audio_pad|>"]


def main():
    ranks = {}
    with open("data/qwen35.tiktoken") as f:
        for line in f:
            b64, rank = line.split()
            ranks[base64.b64decode(b64)] = int(rank)
    n = len(ranks)
    enc = tiktoken.Encoding("qwen35", pat_str=PAT, mergeable_ranks=ranks,
                            special_tokens={s: n + i for i, s in enumerate(SPECIALS)})
    corpus = json.load(open("tests/data/tokenizer/corpus.json", encoding="utf-8"))
    goldens = [enc.encode(text, allowed_special="all") for text in corpus]
    with open("tests/data/tokenizer/goldens.json", "w") as f:
        json.dump({"tiktoken": tiktoken.__version__, "ids": goldens}, f)


if __name__ == "__main__":
    main()
