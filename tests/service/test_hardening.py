"""Hostile input through real HTTP on a real gateway (issue 19): each test names its finding."""

from __future__ import annotations

import httpx

from tests.utils.gateway import Gateway


def test_filter_key_injection_is_a_400_naming_filters(gateway: Gateway) -> None:  # finding 1
    for key in ("x'", "a') OR 1=1 OR json_extract(metadata, '$.x", "tea\nm"):
        r = httpx.post(gateway.v1 + "/retrieve", json={"query": "memory", "filters": {key: "x"}}, timeout=30)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert (err["param"], err["code"], err["type"]) == (
            "filters",
            "invalid_filters",
            "invalid_request_error",
        )
    # The collection still answers (nothing hangs behind the refused request).
    r = httpx.post(gateway.v1 + "/retrieve", json={"query": "memory", "filters": {"source": "x"}}, timeout=10)
    assert r.status_code == 200 and r.json()["results"] == []


def test_collection_name_with_a_trailing_newline_is_a_400(gateway: Gateway) -> None:  # finding 16
    r = httpx.post(gateway.v1 + "/collections", json={"name": "ops\n"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_name"
    names = [c["name"] for c in httpx.get(gateway.v1 + "/collections", timeout=30).json()["data"]]
    assert "ops\n" not in names and "ops" not in names
