"""The ops-format instruction set: deterministic, held out for real, scored by eval/lora.py as intended."""

from __future__ import annotations

import json
from pathlib import Path

from deploy.lora.make_dataset import IDK, make
from eval.lora import score
from service.rag.prompt import PromptTemplates


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_deterministic_and_held_out(tmp_path: Path) -> None:
    meta = make(tmp_path / "a")
    make(tmp_path / "b")
    for name in ("train.jsonl", "test.jsonl", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    train, test = _rows(tmp_path / "a" / "train.jsonl"), _rows(tmp_path / "a" / "test.jsonl")
    assert (len(train), len(test)) == (meta["train"], meta["test"]) == (240, 60)
    # Nothing about a held-out service or document is in training: not as the answer, not as a distractor.
    train_text = json.dumps(train)
    for service in meta["test_services"]:
        assert service not in train_text
    assert {r["group"] for r in train}.isdisjoint({r["group"] for r in test})
    assert any(str(r["group"]).endswith(".md") for r in test)  # corpus documents are held out too


def test_examples_are_the_gateways_prompt_with_a_sectioned_target(tmp_path: Path) -> None:
    make(tmp_path)
    tpl = PromptTemplates.load("en")
    for row in _rows(tmp_path / "test.jsonl"):
        system, user = row["messages"]  # type: ignore[misc]
        assert system == {"role": "system", "content": tpl.system}
        assert user["content"].startswith('Passages:\n[1] """')
        n = row["source_index"]
        target = str(row["target"])
        if n is None:
            assert target == f"Answer: {IDK}\nSources: none"
        else:
            assert target.endswith(f"[{n}].\nSources: [{n}]")
            assert str(row["answer"]).rstrip(".") in user["content"] or str(row["answer"])[:20].lower() in (
                user["content"].lower()
            )
        # The reference answer scores perfectly; a base-model-style answer does not.
        s = score(target, row)
        assert s["format_ok"] and s["sources_correct"]
        assert s["answer_f1"] in (None, 1.0)
        plain = score("The pod was killed [1].", row)
        assert not plain["format_ok"] and not plain["sources_correct"]
