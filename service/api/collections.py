"""Knowledge-base management: collections, documents, uploads and their jobs."""

from __future__ import annotations

import errno
import shutil
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from service.api.deps import StateDep, parse_body
from service.api.docs import documented
from service.auth import PermissionDenied, Principal, audit
from service.auth.deps import PrincipalDep
from service.errors import APIError, BadRequest, NotFound
from service.protocol.openai import CollectionCreate
from service.protocol.responses import (
    CollectionInfo,
    CollectionList,
    Deleted,
    DocumentList,
    Job,
    UploadAccepted,
)

router = APIRouter(tags=["knowledge base"])

MAX_FILES_PER_UPLOAD = 256


def check_filename(name: str | None) -> str:
    """Uploaded names become document ids: refuse anything that could name another path."""
    if not name or not name.strip():
        raise BadRequest("each uploaded file needs a filename", param="file")
    if "/" in name or "\\" in name or "\x00" in name or name in (".", "..") or name.startswith(".."):
        raise BadRequest(
            f"filename '{name}' is not allowed: use a plain name without directories", param="file"
        )
    if len(name) > 255:
        raise BadRequest("filename is longer than 255 characters", param="file")
    return name


def insufficient_storage(detail: str) -> APIError:
    return APIError(
        f"not enough disk space to accept the upload ({detail}); retry when space is freed",
        status_code=507,
        error_type="server_error",
        code="insufficient_storage",
        headers={"Retry-After": "60"},
    )


def _check_room(state: StateDep, incoming: int) -> None:
    """429 when the job queue or staged bytes are full, 507 when the disk is nearly full: before writing."""
    state.knowledge.jobs.check_capacity(incoming)
    root = state.settings.data_dir
    try:
        free = shutil.disk_usage(root if root.exists() else root.parent).free
    except OSError:
        return
    if free - incoming < state.settings.server.min_free_disk_bytes:
        raise insufficient_storage(
            f"{free} bytes free, {state.settings.server.min_free_disk_bytes} kept free"
        )


def _may_manage(principal: Principal, collection: str, what: str, action: str) -> None:
    """403 for user keys and for collections outside an admin key's list; refusals are audited too."""
    try:
        principal.require_manage(collection, what)
    except PermissionDenied:
        audit(principal, action, outcome="denied", collection=collection)
        raise


@router.get("/v1/collections", summary="List collections", **documented(CollectionList, 401, 429))
async def list_collections(state: StateDep) -> dict[str, Any]:
    return {"object": "list", "data": await state.knowledge.list_collections()}


@router.post(
    "/v1/collections",
    status_code=201,
    summary="Create an empty collection",
    **documented(
        CollectionInfo,
        400,
        401,
        403,
        409,
        413,
        429,
        body=CollectionCreate,
        ok_status=201,
        ok_description="Created",
    ),
)
async def create_collection(request: Request, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    req, _ = await parse_body(request, CollectionCreate)
    _may_manage(principal, req.name, "create collections", "collection.create")
    info = await state.knowledge.create_collection(req.name)
    audit(principal, "collection.create", collection=req.name)
    return info


@router.delete(
    "/v1/collections/{name}",
    summary="Delete a collection and its index",
    **documented(Deleted, 401, 403, 404, 429),
)
async def delete_collection(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    _may_manage(principal, name, "delete collections", "collection.delete")
    await state.knowledge.require(name)
    await state.knowledge.delete_collection(name)
    audit(principal, "collection.delete", collection=name)
    return {"id": name, "object": "collection", "deleted": True}


@router.get(
    "/v1/collections/{name}/documents",
    summary="List a collection's documents",
    **documented(DocumentList, 401, 404, 429),
)
async def list_documents(name: str, state: StateDep) -> dict[str, Any]:
    await state.knowledge.require(name)
    docs = await state.knowledge.list_documents(name)
    return {"object": "list", "data": [d.to_dict() for d in docs]}


@router.delete(
    "/v1/collections/{name}/documents/{document_id:path}",
    summary="Delete one document",
    **documented(Deleted, 401, 403, 404, 429),
)
async def delete_document(
    name: str, document_id: str, state: StateDep, principal: PrincipalDep
) -> dict[str, Any]:
    _may_manage(principal, name, "delete documents", "document.delete")
    await state.knowledge.require(name)
    await state.knowledge.delete_document(name, document_id)
    audit(principal, "document.delete", collection=name, document_id=document_id)
    return {"id": document_id, "object": "document", "deleted": True}


@router.post(
    "/v1/collections/{name}/documents",
    status_code=202,
    summary="Upload files for ingestion (multipart field `file`, one or more files)",
    **documented(UploadAccepted, 400, 401, 403, 413, 429, ok_status=202, ok_description="Accepted: a job"),
)
async def upload_documents(name: str, request: Request, state: StateDep, principal: PrincipalDep) -> Response:
    _may_manage(principal, name, "upload documents", "documents.upload")
    if not (request.headers.get("content-type") or "").startswith("multipart/form-data"):
        raise BadRequest("send the files as multipart/form-data in the field 'file'", param="file")
    try:
        incoming = int(request.headers.get("content-length") or 0)
    except ValueError:
        incoming = 0
    _check_room(state, incoming)
    form = await request.form(max_files=MAX_FILES_PER_UPLOAD, max_fields=16)
    uploads = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
    if not uploads:
        raise BadRequest("no files found in the multipart field 'file'", param="file")
    names = [check_filename(u.filename) for u in uploads]
    if len(set(names)) != len(names):
        raise BadRequest("the same filename appears twice in one upload", param="file")
    if not await state.knowledge.exists(name):
        await state.knowledge.create_collection(name)  # uploading to a new name creates it
    staging = state.settings.uploads_dir / uuid.uuid4().hex
    files = []
    staged = 0
    try:
        for i, (upload, filename) in enumerate(zip(uploads, names, strict=True)):
            target_dir = staging / str(i)
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / filename
            with target.open("wb") as out:
                shutil.copyfileobj(upload.file, out, length=1024 * 1024)
            staged += target.stat().st_size
            files.append((filename, target))
        job = state.knowledge.submit_upload(name, files, staging, staged)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise insufficient_storage(exc.strerror or str(exc)) from exc
        raise APIError(f"could not store the upload: {exc.strerror or exc}", code="upload_failed") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        await form.close()
    audit(principal, "documents.upload", collection=name, job_id=job.job_id, files=len(names))
    return JSONResponse(
        {"job_id": job.job_id, "status": job.status, "collection": name, "files": names},
        status_code=202,
        headers={"Location": f"/v1/jobs/{job.job_id}"},
    )


@router.get("/v1/jobs/{job_id}", summary="Status of an ingestion job", **documented(Job, 401, 404, 429))
async def get_job(job_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    job = state.knowledge.jobs.get(job_id)
    if job is None or not principal.can_read(str(job.get("collection"))):
        raise NotFound(f"job '{job_id}' does not exist", param="job_id", code="job_not_found")
    return job
