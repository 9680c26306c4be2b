"""Text-overlap scores for generated answers against references: ROUGE-L and BLEU-4. Pure Python.

Tokens are lower-cased words and punctuation marks; CJK characters count one token each, so
Chinese (written without spaces) is scored per character, as is usual for it.
"""
from __future__ import annotations

import math
import re
from collections import Counter

_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]|[^\W_]+|[^\w\s]",
                    re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall((text or "").lower())


def lcs_length(a: list, b: list) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (beta 1) from the longest common subsequence of tokens, 0..1."""
    cand, ref = tokens(candidate), tokens(reference)
    lcs = lcs_length(cand, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU-4, 0..1: geometric mean of clipped n-gram precisions x brevity penalty.

    Smoothed by adding 1 to the matches and the counts of n > 1 (Lin & Och 2004, "smoothing 2"), so
    a short answer without a 4-gram match is not scored 0 outright; an answer with no word in
    common with the reference still scores 0.
    """
    cand, ref = tokens(candidate), tokens(reference)
    if not cand or not ref:
        return 0.0
    log_precision = 0.0
    for n in range(1, max_n + 1):
        cand_ngrams, ref_ngrams = _ngrams(cand, n), _ngrams(ref, n)
        matches = sum(min(count, ref_ngrams[gram]) for gram, count in cand_ngrams.items())
        total = max(len(cand) - n + 1, 0)
        if n == 1:
            if matches == 0:
                return 0.0
            log_precision += math.log(matches / total)
        else:
            log_precision += math.log((matches + 1) / (total + 1))
    brevity = 1.0 if len(cand) > len(ref) else math.exp(1 - len(ref) / len(cand))
    return brevity * math.exp(log_precision / max_n)


def scores(candidates: list[str], references: list[str]) -> dict:
    """Mean ROUGE-L and BLEU over pairs (each 0..1); None when there are no pairs."""
    pairs = list(zip(candidates, references))
    if not pairs:
        return {"rouge_l": None, "bleu": None}
    return {"rouge_l": sum(rouge_l(c, r) for c, r in pairs) / len(pairs),
            "bleu": sum(bleu(c, r) for c, r in pairs) / len(pairs)}
