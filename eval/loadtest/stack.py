"""The gateway (keys, admission queue) in front of the scripted fake engine, on loopback, for load tests.

The fake answers every chat after `--engine-delay-s` (a fixed service time), so the gateway's
capacity is known: `--max-concurrent / --engine-delay-s` requests per second. Run from the
repository root (the fake engine lives in tests/utils).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--keys-file", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--max-concurrent", type=int, default=8)
    p.add_argument("--max-queued", type=int, default=8)
    p.add_argument("--max-wait-s", type=float, default=2.0)
    p.add_argument("--engine-delay-s", type=float, default=0.2)
    args = p.parse_args()

    import uvicorn

    from service.app import create_app
    from service.settings import EngineSettings, Settings
    from tests.utils.fake_vllm import MODEL, FakeVLLM
    from tests.utils.servers import serve_in_thread

    fake = FakeVLLM()
    fake.response_delay_s = args.engine_delay_s
    with serve_in_thread(fake.app, ready_path="/health") as engine_url:
        settings = Settings(
            data_dir=args.data_dir,
            auth_keys_file=args.keys_file,
            engine=EngineSettings(mode="remote", url=engine_url, served_model_name=MODEL, model=MODEL),
            admission={
                "max_concurrent": args.max_concurrent,
                "max_queued": args.max_queued,
                "max_wait_s": args.max_wait_s,
            },
        )
        app = create_app(settings)
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
