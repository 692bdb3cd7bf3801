"""Overload test: locust floods the gateway at 1x, 2x and 4x its admission capacity.

    .venv/bin/python -m eval.loadtest --duration 20 --out var/loadtest [--append docs/benchmarks.md]

Without `--url` it starts `eval.loadtest.stack` (gateway + fake engine with a fixed service
time) on a free loopback port; with `--url ROOT --key KEY --capacity N` it loads any gateway
(N: its `admission.max_concurrent`). Each level runs `--duration` seconds of locust users with no
think time and no retries; `metrics.json` and a Markdown table go to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def start_stack(stack: ExitStack, args: argparse.Namespace) -> tuple[str, str]:
    """Start gateway + fake engine in a child process; (root URL, key)."""
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ragserve-loadtest-")))
    key = "lt-" + secrets.token_urlsafe(24)
    keys_file = work / "keys.yaml"
    # A generous request limit: the test is about admission, but every request still pays for auth.
    entry = {
        "name": "loadtest",
        "key": key,
        "role": "user",
        "collections": ["*"],
        "requests_per_minute": 10**7,
    }
    keys_file.write_text(yaml.safe_dump([entry]), encoding="utf-8")
    port = _free_port()
    log = (work / "stack.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "eval.loadtest.stack", "--port", str(port), "--keys-file", str(keys_file),
         "--data-dir", str(work / "data"), "--max-concurrent", str(args.capacity),
         "--max-queued", str(args.max_queued), "--max-wait-s", str(args.max_wait_s),
         "--engine-delay-s", str(args.engine_delay_s)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    stack.callback(lambda: (proc.terminate(), proc.wait(timeout=30)))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway stack exited; see {work / 'stack.log'}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return url, key
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the gateway stack did not become ready in 180 s")


def run_level(
    url: str, key: str, users: int, duration_s: int, out_dir: Path, *, polite: bool
) -> dict[str, Any]:
    raw = out_dir / f"requests-{users}u{'-polite' if polite else ''}.json"
    env = {**os.environ, "RAGSERVE_LOADTEST_KEY": key, "RAGSERVE_LOADTEST_OUT": str(raw),
           "RAGSERVE_LOADTEST_HONOR_RETRY_AFTER": "1" if polite else "0"}  # fmt: skip
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
           "-r", str(users), "-t", f"{duration_s}s", "--host", url, "--only-summary",
           "--stop-timeout", "5", "--loglevel", "WARNING"]  # fmt: skip
    with (out_dir / "locust.log").open("a") as log:
        subprocess.run(cmd, env=env, check=False, stdout=log, stderr=log, timeout=duration_s + 120)
    by_status: dict[str, list[float]] = json.loads(raw.read_text(encoding="utf-8"))
    ok = by_status.get("200", [])
    rejected = by_status.get("503", []) + by_status.get("429", [])
    total = sum(len(v) for v in by_status.values())
    return {
        "users": users,
        "clients": "honor Retry-After" if polite else "flood",
        "requests": total,
        "ok": len(ok),
        "rejected_503": len(by_status.get("503", [])),
        "rejected_429": len(by_status.get("429", [])),
        "other": total - len(ok) - len(rejected),
        "throughput_ok_s": round(len(ok) / duration_s, 1),
        "rejection_rate": round(len(rejected) / total, 3) if total else 0.0,
        "ok_ms_p50": _pct(ok, 0.50),
        "ok_ms_p95": _pct(ok, 0.95),
        "ok_ms_p99": _pct(ok, 0.99),
        "ok_ms_mean": round(statistics.fmean(ok), 1) if ok else None,
        "rejected_ms_p50": _pct(rejected, 0.50),
        "rejected_ms_p99": _pct(rejected, 0.99),
    }


def table(rows: list[dict[str, Any]], capacity: int) -> str:
    lines = [
        "| load | users | clients | requests | ok/s | rejected (503 / 429) "
        "| ok p50 / p95 / p99 ms | rejected p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['users'] / capacity:g}x | {r['users']} | {r['clients']} | {r['requests']} | "
            f"{r['throughput_ok_s']} | "
            f"{r['rejection_rate']:.1%} ({r['rejected_503']} / {r['rejected_429']}) | "
            f"{r['ok_ms_p50']} / {r['ok_ms_p95']} / {r['ok_ms_p99']} | "
            + (
                f"{r['rejected_ms_p50']} / {r['rejected_ms_p99']} |"
                if r["rejected_ms_p50"] is not None
                else "— |"
            )
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="root of a running gateway (default: start the fake-engine stack)")
    p.add_argument("--key", default="", help="API key for --url")
    p.add_argument("--capacity", type=int, default=8, help="admission.max_concurrent (slots)")
    p.add_argument("--max-queued", type=int, default=8)
    p.add_argument("--max-wait-s", type=float, default=2.0)
    p.add_argument("--engine-delay-s", type=float, default=0.2, help="the fake engine's service time")
    p.add_argument("--multiples", default="1,2,4", help="load levels as multiples of --capacity")
    p.add_argument("--polite", default="4", help="levels run again with clients that honor Retry-After")
    p.add_argument("--duration", type=int, default=20, help="seconds per level")
    p.add_argument("--out", type=Path, default=Path("var/loadtest"))
    p.add_argument(
        "--append",
        type=Path,
        help='add the results as a section under this Markdown file\'s "Serving speed" topic (or at its end)',
    )
    args = p.parse_args()
    if shutil.which("locust") is None and not (Path(sys.executable).parent / "locust").exists():
        raise SystemExit("locust is not installed: pip install -e '.[dev]'")
    args.out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        url, key = (args.url.rstrip("/"), args.key) if args.url else start_stack(stack, args)
        rows = []
        levels = [(int(m), False) for m in args.multiples.split(",") if m]
        levels += [(int(m), True) for m in args.polite.split(",") if m]
        for m, polite in levels:
            row = run_level(url, key, m * args.capacity, args.duration, args.out, polite=polite)
            print(json.dumps(row), flush=True)
            rows.append(row)
    (args.out / "metrics.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    md = table(rows, args.capacity)
    (args.out / "report.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    if args.append:
        setup = (
            f"fake engine, fixed service time {args.engine_delay_s:g} s"
            if not args.url
            else f"gateway {args.url}"
        )
        section = (
            f"### Admission control under overload (locust, {time.strftime('%Y-%m-%d')})\n\n"
            f"{setup}; admission.max_concurrent={args.capacity}, max_queued={args.max_queued}, "
            f"max_wait_s={args.max_wait_s:g}; {args.duration} s per level; users with no think time "
            "(a flood: a refused user asks again at once, unless it honors Retry-After).\n\n" + md + "\n"
        )
        doc = args.append.read_text(encoding="utf-8") if args.append.exists() else ""
        args.append.write_text(insert_section(doc, section), encoding="utf-8")
    return 0


def insert_section(doc: str, section: str, topic: str = "## Serving speed") -> str:
    """`section` at the end of the `topic` part of a Markdown file organised by topic (docs/benchmarks.md),
    or at the end of the file when it has no such heading."""
    start = doc.find(f"\n{topic}\n")
    if start < 0:
        return doc.rstrip("\n") + "\n\n" + section
    nxt = doc.find("\n## ", start + len(topic) + 2)
    if nxt < 0:
        return doc.rstrip("\n") + "\n\n" + section
    return doc[:nxt].rstrip("\n") + "\n\n" + section + doc[nxt:]


if __name__ == "__main__":
    raise SystemExit(main())
