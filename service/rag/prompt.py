"""Grounded prompt assembly: numbered passages within the token budget, and their citations."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from ingest.types import SearchHit

Language = Literal["en", "zh"]
TokenCounter = Callable[[str], Awaitable[int]]

CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs (also service/rag/attribution.py)
_CJK = re.compile(f"[{CJK_CHARS}]")
CITE = re.compile(r"\[(\d{1,3})\]")  # a citation marker [n]; also service/rag/attribution.py, support.py
# What the system templates tell the model to say when the passages lack the answer.
ABSTENTIONS = ("I don't know based on the provided documents", "根据提供的文档，我不知道")


def detect_language(text: str) -> Language:
    """Chinese when a meaningful share of the letters are CJK ideographs, English otherwise."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    cjk = sum(1 for c in letters if _CJK.match(c))
    return "zh" if cjk / len(letters) >= 0.2 else "en"


def _template(name: str) -> str:
    return resources.files("service.rag").joinpath("templates", name).read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class PromptTemplates:
    system: str
    user: str
    no_passages: str

    @classmethod
    def load(cls, language: Language, system_override: str | None = None) -> PromptTemplates:
        return cls(
            system=system_override or _template(f"system_{language}.txt"),
            user=_template(f"user_{language}.txt"),
            no_passages=_template(f"no_passages_{language}.txt"),
        )


@dataclass
class Citation:
    index: int
    chunk_id: str
    document_id: str
    source: str
    page: int | None
    score: float
    text: str

    @classmethod
    def from_hit(cls, index: int, hit: SearchHit) -> Citation:
        return cls(
            index=index,
            chunk_id=hit.chunk_id,
            document_id=hit.document_id,
            source=hit.source,
            page=hit.page,
            score=round(float(hit.score), 6),
            text=hit.text,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "source": self.source,
            "page": self.page,
            "score": self.score,
            "text": self.text,
        }


def format_passage(n: int, hit: SearchHit) -> str:
    # Only the number and the text: small models copy a "(source, page)" header instead of answering
    # (seen with SmolLM2-135M); the source travels in the citations.
    # Triple quotes mark the passage as quoted data (the system prompt says never to obey text inside).
    return f'[{n}] """{hit.text.strip()}"""'


@dataclass
class GroundedPrompt:
    messages: list[dict[str, Any]]
    citations: list[Citation]
    language: Language
    dropped_for_budget: int
    question: str = ""
    # Set when the relevance gate decided no passage can answer the question: the `grounding` report
    # of the answer, which is then the abstention sentence (the model is not asked).
    irrelevant: dict[str, Any] | None = None
    # What retrieval searched with: the question, or for a follow-up the conversation
    # (service/rag/condense.py); reported in the response's `rag` field.
    search_query: str = ""


async def assemble(
    *,
    messages: Sequence[dict[str, Any]],
    question: str,
    hits: Sequence[SearchHit],
    budget_tokens: int,
    count_tokens: TokenCounter,
    language: Language,
    system_override: str | None = None,
) -> GroundedPrompt:
    """Put as many passages (best first) as fit `budget_tokens` around the conversation.

    `budget_tokens` is what the prompt may use in total (context length minus max_tokens minus a
    reserve for the chat template). The instructions go into the system message (merged with the
    caller's own system message, since many chat templates allow only one, first); the passages
    and the question replace the last user message, where small models follow them best.
    """
    tpl = PromptTemplates.load(language, system_override)
    base = [dict(m) for m in messages]
    last_user = max((i for i, m in enumerate(base) if m.get("role") == "user"), default=None)
    system_parts = [tpl.system]
    rest: list[dict[str, Any]] = []
    for m in base:
        if m.get("role") in ("system", "developer") and not rest:
            if isinstance(m.get("content"), str) and m["content"].strip():
                system_parts.append(m["content"])
        else:
            rest.append(m)
    system_msg = {"role": "system", "content": "\n\n".join(system_parts)}

    def build(passages: list[str]) -> list[dict[str, Any]]:
        body = "\n\n".join(passages) if passages else tpl.no_passages
        user_text = tpl.user.format(passages=body, question=question)
        out = [system_msg]
        for m in rest:
            is_last_user = last_user is not None and m is base[last_user]
            out.append({**m, "content": user_text} if is_last_user else m)
        if last_user is None:
            out.append({"role": "user", "content": user_text})
        return out

    skeleton_tokens = await count_tokens(_flatten(build([])))
    formatted = [format_passage(i + 1, h) for i, h in enumerate(hits)]
    sizes = await asyncio.gather(*(count_tokens(p + "\n\n") for p in formatted)) if formatted else []
    used = skeleton_tokens
    kept: list[str] = []
    citations: list[Citation] = []
    for hit, text, size in zip(hits, formatted, sizes, strict=True):
        if used + size > budget_tokens:
            break  # keep rank order: a lower-ranked passage never displaces a better one
        kept.append(text)  # numbered by rank, and we stop at the first misfit, so [n] stays exact
        citations.append(Citation.from_hit(len(kept), hit))
        used += size
    return GroundedPrompt(
        messages=build(kept),
        citations=citations,
        language=language,
        dropped_for_budget=len(hits) - len(kept),
        question=question,
    )


def _flatten(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages)


def cited_indices(answer: str, n_citations: int) -> list[int]:
    """Passage numbers the answer refers to as [n], in order of first mention."""
    seen: list[int] = []
    for m in CITE.finditer(answer):
        i = int(m.group(1))
        if 1 <= i <= n_citations and i not in seen:
            seen.append(i)
    return seen


def citations_payload(citations: Sequence[Citation], answer: str | None) -> list[dict[str, Any]]:
    cited = set(cited_indices(answer, len(citations))) if answer is not None else set()
    out = []
    for c in citations:
        d = c.to_dict()
        if answer is not None:
            d["cited"] = c.index in cited
        out.append(d)
    return out
