"""Token-aware chunking: windows of at most ``max_tokens`` model tokens, overlapping by ``overlap`` tokens,
cut at token boundaries of the model's own tokenizer, so no chunk is truncated by the model. Each chunk is an
exact slice of the original text (character offsets from the tokenizer), and the same text always gives the
same chunks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # character offsets into the document's text
    end: int
    text: str


def chunk_spans(offsets: list[tuple[int, int]], max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """(first token, end token) windows over ``len(offsets)`` tokens."""
    if max_tokens <= 0 or not 0 <= overlap < max_tokens:
        raise ValueError("need max_tokens > 0 and 0 <= overlap < max_tokens")
    n = len(offsets)
    if n <= max_tokens:
        return [(0, n)]
    spans, start = [], 0
    while True:
        end = min(start + max_tokens, n)
        spans.append((start, end))
        if end == n:
            return spans
        start = end - overlap


def chunk_text(text: str, tokenizer, max_tokens: int = 200, overlap: int = 32) -> list[Chunk]:
    """The chunks of ``text`` (one chunk when it fits). ``tokenizer`` is a Hugging Face fast tokenizer."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
    if not offsets:
        return [Chunk(0, 0, len(text), text)]
    chunks = []
    for i, (first, end) in enumerate(chunk_spans(offsets, max_tokens, overlap)):
        # A single-chunk text keeps everything (leading/trailing whitespace included); windows cut at tokens.
        lo = 0 if first == 0 else offsets[first][0]
        hi = len(text) if end == len(offsets) else offsets[end - 1][1]
        chunks.append(Chunk(i, lo, hi, text[lo:hi]))
    return chunks
