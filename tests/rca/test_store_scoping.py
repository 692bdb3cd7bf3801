"""The analysis store keeps tenants apart: dedup, resolve, retention per collection and key (issue 19, #3)."""

from __future__ import annotations

from pathlib import Path

from service.rca.models import AlertSummary
from service.rca.store import AnalysisStore, ListFilter


def _alert(fp: str, name: str = "KubePodCrashLooping") -> AlertSummary:
    return AlertSummary(
        alertname=name, fingerprint=fp, status="firing", labels={"alertname": name}, annotations={}
    )


def _create(store: AnalysisStore, fp: str, collection: str, owner: str) -> tuple[str, bool]:
    e = store.create(
        alert=_alert(fp), collection=collection, source="webhook", request={}, dedupe=True, owner=owner
    )
    return e.analysis_id, e.created


def test_dedup_and_resolve_stay_within_collection_and_key(tmp_path: Path) -> None:
    store = AnalysisStore(tmp_path / "a.db", max_rows=100, max_age_s=86400)
    mine, created = _create(store, "fp1", "runbooks", "ops")
    assert created
    # Another key, or another collection, sending the same fingerprint gets its own analysis.
    theirs, created = _create(store, "fp1", "runbooks", "attacker")
    assert created and theirs != mine
    assert _create(store, "fp1", "finance", "ops")[1]
    assert _create(store, "fp1", "runbooks", "ops") == (mine, False)  # the same sender: a duplicate
    # A resolve from another key touches only its own analyses.
    assert store.resolve("fp1", None, collection="runbooks", owner="attacker") == [theirs]
    got = store.get(mine)
    assert got is not None and got.alert_status == "firing"
    assert store.resolve("fp1", None, collection="runbooks", owner="ops") == [mine]
    store.close()


def test_retention_never_evicts_another_tenants_analyses(tmp_path: Path) -> None:
    store = AnalysisStore(tmp_path / "a.db", max_rows=3, max_age_s=86400)
    mine = [_create(store, f"mine{i}", "runbooks", "ops")[0] for i in range(2)]
    for i in range(50):  # a flood from another key
        _create(store, f"flood{i}", "runbooks", "attacker")
    assert all(store.get(aid) is not None for aid in mine)
    assert store.list(ListFilter(), limit=200)[1] == 2 + 3  # each scope holds at most max_rows
    store.close()


def test_a_store_from_before_owners_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    store = AnalysisStore(path, max_rows=10, max_age_s=86400)
    aid, _ = _create(store, "fp", "runbooks", "")
    store.close()
    with sqlite3.connect(path) as conn:  # the layout an older version wrote
        conn.execute("DROP INDEX analyses_scope")
        for column in ("owner", "owner_json", "charged"):
            conn.execute(f"ALTER TABLE analyses DROP COLUMN {column}")
    reopened = AnalysisStore(path, max_rows=10, max_age_s=86400)
    assert reopened.get(aid) is not None
    assert _create(reopened, "fp", "runbooks", "") == (aid, False)
    reopened.close()


def test_a_background_analysis_runs_with_its_senders_permissions() -> None:
    from service.auth.principal import ANONYMOUS, Principal
    from service.rca.service import principal_from_json, principal_to_json

    sre = Principal("sre", "user", frozenset({"runbooks"}), None, 5000, frozenset({"promql"}))
    for p in (sre, ANONYMOUS):
        assert principal_from_json(principal_to_json(p)) == p
