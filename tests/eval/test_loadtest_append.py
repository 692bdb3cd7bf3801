"""`eval.loadtest --append` files its section under the "Serving speed" topic of docs/benchmarks.md."""

from __future__ import annotations

from eval.loadtest.__main__ import insert_section

SECTION = "### Admission control under overload (locust, 2026-12-03)\n\n| a |\n"


def test_the_section_goes_at_the_end_of_its_topic() -> None:
    doc = "# Benchmarks\n\n## Serving speed\n\n### Old\n\ntext\n\n## Retrieval\n\n### R\n"
    out = insert_section(doc, SECTION)
    assert out.index("### Old") < out.index("### Admission control") < out.index("## Retrieval")
    assert out.endswith("## Retrieval\n\n### R\n")


def test_without_the_topic_it_is_appended() -> None:
    assert insert_section("# B\n\n## Other\n", SECTION).endswith("## Other\n\n" + SECTION)
    assert insert_section("# B\n\n## Serving speed\n\ntext\n", SECTION).endswith("text\n\n" + SECTION)
