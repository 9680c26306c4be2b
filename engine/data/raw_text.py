"""Raw text for continued pre-training: documents joined with EOS and cut into `max_seq_len` blocks.

Every token is trained (the labels are the inputs). Each document is tokenised as the tokenizer does on its
own (its BOS, where it adds one) and followed by EOS, so the model learns where a document ends; the
stream of documents is then cut into blocks of exactly `max_seq_len` tokens (the last one shorter), the
"group texts" step of Hugging Face's causal-LM examples, so no text beyond a block boundary is lost to
truncation. Pure: takes a tokenizer, does no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.data.masking import Encoded


@dataclass
class Blocks:
    blocks: list[Encoded]
    documents: int
    tokens: int


def document_ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    return ids + [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else ids


def chunk_documents(tokenizer, texts: list[str], max_seq_len: int) -> Blocks:
    stream: list[int] = []
    for text in texts:
        stream += document_ids(tokenizer, text)
    blocks = [stream[i:i + max_seq_len] for i in range(0, len(stream), max_seq_len)]
    return Blocks([Encoded(list(b), list(b)) for b in blocks], len(texts), len(stream))
