"""The web UI (`ui/`, a Vue single-page app built by `make ui` into `ui/dist`), served at `/ui/`.

- `/ui/assets/*` are content-hashed by Vite: cached for a year, `immutable`.
- `index.html` (for `/ui/` and every client-side route such as `/ui/alerts/<id>`) is revalidated on
  every load (`no-cache` + ETag), so a new build is picked up at once.
- The files are public: they hold no data, and the page must load to ask for an API key. Every
  API call the page makes carries the key (`Authorization: Bearer`) and is checked as usual.
- A strict Content-Security-Policy keeps the page on its own origin (no CDN, fonts or trackers).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from service.errors import NotFound

logger = logging.getLogger("ragserve.ui")

PREFIX = "/ui"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def default_ui_dir() -> Path:
    """`ui/dist` of the source tree this package runs from."""
    return Path(__file__).resolve().parent.parent / "ui" / "dist"


def built(dist: Path) -> bool:
    return (dist / "index.html").is_file()


def log_ui_state(dist: Path) -> None:
    if built(dist):
        logger.info("web UI at %s/ (files from %s)", PREFIX, dist)
    else:
        logger.warning(
            "web UI not built (%s has no index.html): run `make ui`, or set RAGSERVE_SERVER__UI_DIR", dist
        )


def _not_built(dist: Path) -> NotFound:
    return NotFound(
        f"the web UI is not built ({dist} has no index.html): run `make ui` "
        "(or set RAGSERVE_SERVER__UI_DIR to a built ui/dist)",
        code="ui_not_built",
    )


def _not_modified(request: Request, response: FileResponse) -> bool:
    etag = response.headers.get("etag")
    wanted = request.headers.get("if-none-match")
    if not etag or not wanted:
        return False
    tags = [t.strip().removeprefix("W/") for t in wanted.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def _file(request: Request, path: Path, cache_control: str, extra: dict[str, str] | None = None) -> Response:
    headers = {"Cache-Control": cache_control, **(extra or {})}
    response = FileResponse(path, headers=headers, stat_result=path.stat())  # stat now: ETag for the 304
    if _not_modified(request, response):
        keep = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "cache-control")}
        return Response(status_code=304, headers=keep)
    return response


def build_router(dist: Path) -> APIRouter:
    """Routes for `/`, `/ui` and `/ui/{path}`; `dist` is checked on each request (a build may come later)."""
    router = APIRouter(include_in_schema=False)
    root = dist.resolve()

    @router.api_route("/", methods=["GET", "HEAD"])
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @router.api_route(PREFIX, methods=["GET", "HEAD"])
    async def ui_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @router.api_route(PREFIX + "/{path:path}", methods=["GET", "HEAD"])
    async def ui_file(path: str, request: Request) -> Response:
        if not built(root):
            raise _not_built(root)
        target = (root / path).resolve() if path else root / "index.html"
        if not target.is_relative_to(root):
            raise NotFound("no such file", code="not_found")
        if path.startswith("assets/"):
            # Never answer a missing hashed asset with the page: the browser would run HTML as a script.
            if not target.is_file():
                raise NotFound(f"no such UI asset: {path} (stale page? reload it)", code="not_found")
            return _file(request, target, IMMUTABLE, {"X-Content-Type-Options": "nosniff"})
        if path and target.is_file() and target.name != "index.html":
            return _file(request, target, REVALIDATE, {"X-Content-Type-Options": "nosniff"})
        if path and "." in path.rsplit("/", 1)[-1] and target.name != "index.html":
            raise NotFound(f"no such UI file: {path}", code="not_found")
        # `/ui/`, `/ui/index.html` and client-side routes (`/ui/alerts/rca_1`): the app's page.
        return _file(request, root / "index.html", REVALIDATE, _PAGE_HEADERS)

    return router
