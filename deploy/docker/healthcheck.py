"""Docker HEALTHCHECK: 0 when the process in this container answers its liveness route.

The gateway answers `/healthz`; the same image running vLLM's own server (`vllm` command) answers
`/health`. `HEALTHCHECK_URL` overrides both. Standard library only: the images carry no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("RAGSERVE_PORT", "8000")
    urls = (
        [os.environ["HEALTHCHECK_URL"]]
        if os.environ.get("HEALTHCHECK_URL")
        else [
            f"http://127.0.0.1:{port}/healthz",
            f"http://127.0.0.1:{port}/health",
        ]
    )
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=4) as r:
                if r.status == 200:
                    return 0
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                print(f"{url}: HTTP {exc.code}", file=sys.stderr)
                return 1
        except OSError as exc:
            print(f"{url}: {exc}", file=sys.stderr)
            return 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
