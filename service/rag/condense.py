"""The search query of a follow-up question: the conversation, not only its last words.

"And the second step?" or "那第二步呢？" finds nothing by itself. Two ways to make it searchable,
measured on hand-written follow-ups over the sample corpus (`python -m eval.condense`):

- `history`: the follow-up preceded by the user's earlier questions of the conversation (up to
  `rag.condense_turns`); free, and the earlier question names the topic the follow-up refers to;
- `model`: the chat model rewrites the follow-up as a standalone question (one extra short
  generation before retrieval, seconds on a CPU).

The prompt still ends with the user's own follow-up; the model sees the whole conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.protocol.openai import content_text
from service.rag.prompt import Language

CONDENSE_SYSTEM = {
    "en": (
        "Rewrite the user's last question as one standalone question that can be understood without "
        "the conversation: replace words like 'it', 'that' or 'the second step' with what they refer "
        "to. Write only the question, in the language of the last question."
    ),
    "zh": (
        "把用户的最后一个问题改写成一个不看对话也能理解的独立问题：把“它”“那个”“第二步”等词换成它们所指的内容。"
        "只输出问题本身，使用最后一个问题的语言。"
    ),
}


def earlier_user_texts(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The user messages before the last one, oldest first (empty: not a follow-up)."""
    users = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    return [t for t in users[:-1] if t.strip()]


def history_query(messages: Sequence[dict[str, Any]], question: str, *, turns: int) -> str:
    """`question` preceded by the last `turns` earlier user questions of the conversation."""
    earlier = earlier_user_texts(messages)[-turns:] if turns > 0 else []
    return "\n".join([*earlier, question])


def condense_request(
    messages: Sequence[dict[str, Any]], question: str, language: Language, *, max_chars: int = 4000
) -> list[dict[str, Any]]:
    """Chat messages asking the model for a standalone version of `question` (the conversation is
    quoted in one user message, newest kept when it is long)."""
    lines = []
    for m in messages[:-1]:
        if m.get("role") in ("user", "assistant") and (text := content_text(m.get("content")).strip()):
            lines.append(f"{m['role']}: {text}")
    transcript = "\n".join(lines)[-max_chars:]
    label = (
        ("对话：", "最后一个问题：", "独立问题：")
        if language == "zh"
        else ("Conversation:", "Last question:", "Standalone question:")
    )
    user = f"{label[0]}\n{transcript}\n\n{label[1]} {question}\n{label[2]}"
    return [{"role": "system", "content": CONDENSE_SYSTEM[language]}, {"role": "user", "content": user}]


def clean_condensed(text: str, fallback: str) -> str:
    """The model's standalone question: its first non-empty line, without a label it may repeat."""
    for line in text.splitlines():
        line = line.strip()
        for prefix in ("Standalone question:", "独立问题：", "独立问题:"):
            if line.startswith(prefix):
                line = line[len(prefix) :].strip()
        line = line.strip('"“”')
        if line:
            return line[:1000]
    return fallback
