"""`ragserve bench serve`: a streaming load generator for OpenAI-compatible chat servers.

Works against ragserve's gateway or any OpenAI-compatible server (vLLM's own included), in
the spirit of vLLM's `bench serve`: for each concurrency level it sends N streaming
`POST /v1/chat/completions` requests through one `httpx.AsyncClient`, at most `c` in flight
(a semaphore per level), and measures per request:

- TTFT: from sending the request to the first chunk that carries content;
- E2E: from sending the request to `data: [DONE]`;
- output tokens: `usage.completion_tokens` of the usage chunk (`stream_options.include_usage`);
- ITL, token-normalised (what `itl_ms_*` report): `(e2e - ttft) / (output_tokens - 1)` for
  each request, i.e. vLLM's TPOT. It does not depend on how many tokens a server packs into
  one SSE chunk, so a gateway that coalesces chunks compares fairly with a raw engine;
- chunk gaps (`chunk_itl_ms_*`): the time between consecutive content chunks, vLLM's ITL.
  Equal to the above when every chunk carries one token; larger when chunks carry several,
  and its p99 shows stalls (e.g. a decode step held up by another request's prefill).

Each level's throughput is measured over its wall time (first send to last completion).
Errors (HTTP errors, errors inside the stream, truncated streams, timeouts) are counted per
level and do not stop the run; not reaching the server at all does.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from eval.bench_report import PLOT_NAME, write_outputs
from eval.prompts import Conversation, load_conversations

METRIC_KEYS: tuple[str, ...] = (
    "concurrency",
    "requests",
    "errors",
    "output_throughput_tok_s",
    "request_throughput_s",
    "ttft_ms_p50",
    "ttft_ms_p99",
    "itl_ms_p50",
    "itl_ms_p99",
    "e2e_ms_p50",
    "e2e_ms_p99",
)


class BenchError(Exception):
    """A failure that ends the whole run (bad arguments, server unreachable)."""


@dataclass
class BenchConfig:
    url: str
    concurrency: list[int]
    requests: int
    max_tokens: int
    out: Path
    ignore_eos: bool = False
    rag: str | None = None
    model: str | None = None
    prompts_file: str | None = None
    api_key: str | None = None
    timeout_s: float = 600.0
    warmup: bool = True
    slo_ttft_ms: float | None = None
    slo_itl_ms: float | None = None
    baselines: list[str] = field(default_factory=list)


@dataclass
class RequestResult:
    index: int
    ok: bool
    error: str | None = None
    ttft_s: float | None = None
    e2e_s: float = 0.0
    output_tokens: int = 0
    prompt_tokens: int | None = None
    content_chunks: int = 0
    usage_reported: bool = False
    chunk_gaps_s: list[float] = field(default_factory=list)

    @property
    def itl_s(self) -> float | None:
        """Token-normalised inter-token latency (vLLM's TPOT) of this request."""
        if not self.ok or self.ttft_s is None or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation (numpy's default); None if empty."""
    if not values:
        return None
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(data[lo])
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _ms(values: Sequence[float]) -> list[float]:
    return [v * 1000.0 for v in values]


def _round(value: float | None, ndigits: int = 3) -> float | None:
    return None if value is None else round(value, ndigits)


def summarize_level(
    results: Sequence[RequestResult],
    *,
    concurrency: int,
    duration_s: float,
    slo_ttft_ms: float | None = None,
    slo_itl_ms: float | None = None,
) -> dict[str, Any]:
    """One `metrics.json` row from the requests of one concurrency level."""
    ok = [r for r in results if r.ok]
    ttft = _ms([r.ttft_s for r in ok if r.ttft_s is not None])
    itl = _ms([v for v in (r.itl_s for r in ok) if v is not None])
    e2e = _ms([r.e2e_s for r in ok])
    gaps = _ms([g for r in ok for g in r.chunk_gaps_s])
    out_tokens = sum(r.output_tokens for r in ok)
    chunks = sum(r.content_chunks for r in ok)
    duration = max(duration_s, 1e-9)
    row: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": len(results),
        "errors": len(results) - len(ok),
        "output_throughput_tok_s": _round(out_tokens / duration),
        "request_throughput_s": _round(len(ok) / duration, 4),
        "ttft_ms_p50": _round(percentile(ttft, 50)),
        "ttft_ms_p99": _round(percentile(ttft, 99)),
        "itl_ms_p50": _round(percentile(itl, 50)),
        "itl_ms_p99": _round(percentile(itl, 99)),
        "e2e_ms_p50": _round(percentile(e2e, 50)),
        "e2e_ms_p99": _round(percentile(e2e, 99)),
        # extras
        "successful_requests": len(ok),
        "duration_s": _round(duration_s),
        "output_tokens_total": out_tokens,
        "prompt_tokens_total": sum(r.prompt_tokens or 0 for r in ok),
        "ttft_ms_mean": _round(_mean(ttft)),
        "itl_ms_mean": _round(_mean(itl)),
        "e2e_ms_mean": _round(_mean(e2e)),
        "chunk_itl_ms_p50": _round(percentile(gaps, 50)),
        "chunk_itl_ms_p99": _round(percentile(gaps, 99)),
        "tokens_per_chunk_mean": _round(out_tokens / chunks if chunks else None),
        "usage_missing": sum(1 for r in ok if not r.usage_reported),
        "error_kinds": dict(Counter((r.error or "?").split(":")[0] for r in results if not r.ok)),
    }
    if slo_ttft_ms is not None or slo_itl_ms is not None:
        good = 0
        for r in ok:
            t_ok = slo_ttft_ms is None or (r.ttft_s is not None and r.ttft_s * 1000 <= slo_ttft_ms)
            i = r.itl_s
            i_ok = slo_itl_ms is None or i is None or i * 1000 <= slo_itl_ms
            good += int(t_ok and i_ok)
        row["goodput_req_s"] = _round(good / duration, 4)
        row["slo_attained"] = _round(good / len(results) if results else None, 4)
    return row


# --------------------------------------------------------------------------- SSE


class _Done:
    """The `data: [DONE]` sentinel."""


DONE = _Done()


def parse_sse_line(line: str) -> dict[str, Any] | _Done | None:
    """One SSE line: a JSON event, DONE, or None for blank lines, comments and other fields."""
    line = line.rstrip("\r\n")
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload:
        return None
    if payload == "[DONE]":
        return DONE
    try:
        event = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed SSE data: {payload[:80]!r}") from exc
    if not isinstance(event, dict):
        raise ValueError(f"SSE data is not a JSON object: {payload[:80]!r}")
    return event


def _delta_text(event: dict[str, Any]) -> str:
    text = ""
    for choice in event.get("choices") or []:
        delta = choice.get("delta") or {}
        for key in ("content", "reasoning_content", "reasoning"):
            value = delta.get(key)
            if isinstance(value, str):
                text += value
    return text


def _error_message(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return " ".join(text.split())[:200]
    if isinstance(doc, dict):
        err = doc.get("error", doc)
        if isinstance(err, dict) and err.get("message"):
            return " ".join(str(err["message"]).split())[:200]
        if isinstance(err, str):
            return err[:200]
        if doc.get("detail"):
            return str(doc["detail"])[:200]
    return " ".join(text.split())[:200]


# --------------------------------------------------------------------------- requests


def build_body(
    conv: Conversation, *, model: str, max_tokens: int, ignore_eos: bool, rag: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": conv,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    if ignore_eos:
        body["ignore_eos"] = True  # vLLM sampling extension: generate exactly max_tokens
    if rag is not None:
        body["rag"] = {"collection": rag}
    return body


async def stream_chat(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], *, index: int = 0
) -> RequestResult:
    """Send one streaming chat request and time it; never raises for request failures."""
    res = RequestResult(index=index, ok=False)
    start = time.perf_counter()
    last_chunk: float | None = None
    done = False
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code >= 400:
                msg = _error_message(await resp.aread())
                res.error = f"HTTP {resp.status_code}: {msg}"
                res.e2e_s = time.perf_counter() - start
                return res
            async for line in resp.aiter_lines():
                event = parse_sse_line(line)
                if event is None:
                    continue
                now = time.perf_counter()
                if isinstance(event, _Done):
                    done = True
                    break
                if "error" in event and not event.get("choices"):
                    res.error = f"stream error: {_error_message(json.dumps(event))}"
                    res.e2e_s = now - start
                    return res
                if _delta_text(event):
                    res.content_chunks += 1
                    if res.ttft_s is None:
                        res.ttft_s = now - start
                    elif last_chunk is not None:
                        res.chunk_gaps_s.append(now - last_chunk)
                    last_chunk = now
                usage = event.get("usage")
                if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
                    res.output_tokens = int(usage["completion_tokens"])
                    if usage.get("prompt_tokens") is not None:
                        res.prompt_tokens = int(usage["prompt_tokens"])
                    res.usage_reported = True
    except httpx.TimeoutException as exc:
        res.error = f"timeout: {type(exc).__name__}"
    except httpx.HTTPError as exc:
        res.error = f"{type(exc).__name__}: {exc}".strip()
    except ValueError as exc:
        res.error = f"protocol: {exc}"
    res.e2e_s = time.perf_counter() - start
    if res.error is not None:
        return res
    if not done:
        res.error = "truncated: stream ended before [DONE]"
        return res
    if not res.usage_reported:
        res.output_tokens = res.content_chunks  # best effort: one token per chunk
    res.ok = True
    return res


async def run_level(
    client: httpx.AsyncClient,
    url: str,
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
) -> tuple[list[RequestResult], float]:
    """All `bodies` with at most `concurrency` in flight; returns results and wall time."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, body: dict[str, Any]) -> RequestResult:
        async with sem:
            return await stream_chat(client, url, body, index=i)

    start = time.perf_counter()
    results = await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    return list(results), time.perf_counter() - start


def normalize_root(url: str) -> str:
    root = url.strip().rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise BenchError(f"--url must start with http:// or https://, got {url!r}")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root


async def resolve_model(client: httpx.AsyncClient, root: str) -> str:
    """First model id of GET /v1/models that is not a virtual `rag/...` model."""
    try:
        resp = await client.get(f"{root}/v1/models")
    except httpx.HTTPError as exc:
        raise BenchError(f"cannot reach {root}: {type(exc).__name__}: {exc}".strip()) from None
    if resp.status_code >= 400:
        raise BenchError(
            f"GET {root}/v1/models failed: HTTP {resp.status_code}: {_error_message(resp.content)}"
        )
    try:
        ids = [str(m["id"]) for m in resp.json()["data"]]
    except (ValueError, KeyError, TypeError):
        raise BenchError(f"GET {root}/v1/models did not return an OpenAI model list") from None
    for mid in ids:
        if not mid.startswith("rag/"):
            return mid
    raise BenchError(f"{root}/v1/models lists no base model (ids: {ids}); pass --model")


def _progress(stream: TextIO, row: dict[str, Any]) -> None:
    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}"

    print(
        f"bench: concurrency={row['concurrency']} requests={row['requests']} errors={row['errors']} "
        f"output={f(row['output_throughput_tok_s'])} tok/s req={row['request_throughput_s']}/s "
        f"ttft_p50={f(row['ttft_ms_p50'])} ms itl_p50={f(row['itl_ms_p50'])} ms "
        f"e2e_p50={f(row['e2e_ms_p50'])} ms ({row['duration_s']:.1f} s)",
        file=stream,
        flush=True,
    )


async def run_bench_async(
    cfg: BenchConfig, *, progress: TextIO | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Run every level; returns (metrics rows, run metadata, per-request records)."""
    stream = progress if progress is not None else sys.stderr
    root = normalize_root(cfg.url)
    if not cfg.concurrency or any(c < 1 for c in cfg.concurrency):
        raise BenchError("--concurrency needs positive integers, e.g. 1,8,32")
    if cfg.requests < 1 or cfg.max_tokens < 1:
        raise BenchError("--requests and --max-tokens must be positive")
    convs = load_conversations(cfg.prompts_file)
    load_before = os.getloadavg()
    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    limits = httpx.Limits(max_connections=max(cfg.concurrency) + 4, max_keepalive_connections=None)
    timeout = httpx.Timeout(cfg.timeout_s, connect=10.0)
    chat_url = f"{root}/v1/chat/completions"
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as client:
        if cfg.model is not None:
            model, rag_field = cfg.model, cfg.rag
        elif cfg.rag is not None:
            model, rag_field = f"rag/{cfg.rag}", None
        else:
            model, rag_field = await resolve_model(client, root), None

        def body(i: int, max_tokens: int) -> dict[str, Any]:
            return build_body(
                convs[i % len(convs)],
                model=model,
                max_tokens=max_tokens,
                ignore_eos=cfg.ignore_eos,
                rag=rag_field,
            )

        if cfg.warmup:
            warm = await stream_chat(client, chat_url, body(0, min(cfg.max_tokens, 16)))
            if not warm.ok:
                if (warm.error or "").startswith(("ConnectError", "ConnectTimeout")):
                    raise BenchError(f"cannot reach {root}: {warm.error}")
                raise BenchError(f"warm-up request to {chat_url} failed: {warm.error}")
            print(f"bench: warm-up ok (model {model}, {warm.e2e_s * 1000:.0f} ms)", file=stream, flush=True)

        rows: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        for c in cfg.concurrency:
            bodies = [body(i, cfg.max_tokens) for i in range(cfg.requests)]
            results, duration = await run_level(client, chat_url, bodies, c)
            row = summarize_level(
                results,
                concurrency=c,
                duration_s=duration,
                slo_ttft_ms=cfg.slo_ttft_ms,
                slo_itl_ms=cfg.slo_itl_ms,
            )
            rows.append(row)
            _progress(stream, row)
            for r in results:
                rec = asdict(r)
                rec["concurrency"] = c
                rec["itl_s"] = r.itl_s
                records.append(rec)
    meta = {
        "url": root,
        "model": model,
        "rag": cfg.rag,
        "requests_per_level": cfg.requests,
        "max_tokens": cfg.max_tokens,
        "ignore_eos": cfg.ignore_eos,
        "prompts": cfg.prompts_file or f"built-in ({len(convs)} operations questions)",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    return rows, meta, records


# --------------------------------------------------------------------------- the whole run


def load_baselines(paths: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        try:
            doc = json.loads(Path(p).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BenchError(f"cannot read baseline {p}: {exc}") from None
        if not isinstance(doc, dict) or "output_throughput_tok_s" not in doc:
            raise BenchError(f"{p} is not a baseline result (no output_throughput_tok_s)")
        out.append(doc)
    return out


def run_bench(cfg: BenchConfig, *, progress: TextIO | None = None) -> list[dict[str, Any]]:
    """Run the benchmark and write metrics.json, report.md, run.json, requests.jsonl and the plot."""
    baselines = load_baselines(cfg.baselines)
    rows, meta, records = asyncio.run(run_bench_async(cfg, progress=progress))
    for r in rows:
        for b in baselines:
            base = b["output_throughput_tok_s"]
            if base and r["output_throughput_tok_s"] is not None:
                r[f"x_{b.get('backend', 'baseline')}"] = round(r["output_throughput_tok_s"] / base, 3)
    write_outputs(cfg.out, rows, meta, records, baselines)
    return rows


def parse_concurrency(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BenchError(f"--concurrency must be comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise BenchError(f"--concurrency must be positive integers, got {text!r}")
    return values


def add_serve_arguments(p: Any) -> None:
    p.add_argument("--url", required=True, help="server root without /v1, e.g. http://127.0.0.1:8000")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated levels (default 1,8,32)")
    p.add_argument("--requests", type=int, default=64, help="requests per level (default 64)")
    p.add_argument("--max-tokens", type=int, default=64, help="max_tokens per request (default 64)")
    p.add_argument(
        "--ignore-eos", action="store_true", help="send vLLM's ignore_eos so each request makes max tokens"
    )
    p.add_argument("--rag", metavar="COLLECTION", help="benchmark RAG answers (model rag/COLLECTION)")
    p.add_argument("--model", help="model name (default: first non-rag id of GET /v1/models)")
    p.add_argument("--prompts", metavar="FILE", help="JSONL prompts (default: 64 built-in questions)")
    p.add_argument("--api-key", help="bearer token for the server")
    p.add_argument("--timeout", type=float, default=600.0, help="per-request timeout in s (default 600)")
    p.add_argument("--no-warmup", action="store_true", help="skip the warm-up request")
    p.add_argument("--slo-ttft-ms", type=float, help="TTFT SLO for goodput")
    p.add_argument("--slo-itl-ms", type=float, help="ITL SLO for goodput")
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="FILE",
        help="result JSON of `python -m eval.baselines` to report ratios against (repeatable)",
    )
    p.add_argument("--out", required=True, help="output directory")


def config_from_args(args: Any) -> BenchConfig:
    return BenchConfig(
        url=args.url,
        concurrency=parse_concurrency(args.concurrency),
        requests=args.requests,
        max_tokens=args.max_tokens,
        out=Path(args.out),
        ignore_eos=args.ignore_eos,
        rag=args.rag,
        model=args.model,
        prompts_file=args.prompts,
        api_key=args.api_key,
        timeout_s=args.timeout,
        warmup=not args.no_warmup,
        slo_ttft_ms=args.slo_ttft_ms,
        slo_itl_ms=args.slo_itl_ms,
        baselines=list(args.baseline),
    )


def cmd_bench_serve(args: Any, *, progress: TextIO | None = None) -> int:
    cfg = config_from_args(args)
    rows = run_bench(cfg, progress=progress)
    stream = progress if progress is not None else sys.stderr
    print(f"bench: wrote {cfg.out / 'metrics.json'}, report.md, {PLOT_NAME}", file=stream)
    failed = [r["concurrency"] for r in rows if r["errors"] == r["requests"]]
    if failed:
        print(f"bench: every request failed at concurrency {failed} (see requests.jsonl)", file=stream)
        return 1
    return 0


def main(argv: Sequence[str] | None = None, *, progress: TextIO | None = None) -> int:
    """`python -m eval.bench ...`: the same as `ragserve bench serve ...` without the service CLI."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m eval.bench", description="Streaming load benchmark of an OpenAI-compatible server."
    )
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_bench_serve(args, progress=progress)
    except (BenchError, OSError, ValueError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
