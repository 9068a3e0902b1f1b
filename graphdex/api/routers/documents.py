"""Documents in: queued for the ingestion worker, their indexing followed, retried, deleted.

Submissions and deletes only queue (202): indexing takes seconds to minutes, and a delete waits for the batch being
indexed, so the caller polls GET /documents/{id} instead of holding a connection open (or a server thread).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from graphdex.api import actions
from graphdex.api.deps import IndexDep, JobsDep, KeyCheckedFirst, QueueDep, require_read_key, require_write_key
from graphdex.api.jobs import JobStatus
from graphdex.api.json_bodies import not_json
from graphdex.api.schemas import DocumentsIn
from graphdex.ingest.documents import DocumentError, SourceDocument, load_upload

router = APIRouter(route_class=KeyCheckedFirst, tags=["documents"])
write_access = [Depends(require_write_key)]
read_access = [Depends(require_read_key)]

# The body is read by hand, to share the path between JSON and uploads; the app adds DocumentsIn to the components.
_SUBMISSION_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/DocumentsIn"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
}}}


@router.post("/documents", status_code=202, dependencies=write_access, openapi_extra=_SUBMISSION_BODY,
             summary="Queue documents for indexing (JSON body, or multipart upload of .txt/.md/.json/.jsonl/.pdf/.docx/.pptx/.xlsx/.html files)")
async def submit_documents(request: Request, jobs: JobsDep) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        documents = await _uploaded(request)
    elif content_type.startswith("application/json") or not content_type:
        try:
            body = DocumentsIn.model_validate(await request.json())  # the route's StrictJsonRequest: JSON, nothing else
        except json.JSONDecodeError as error:
            raise not_json(error) from None
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_url=False, include_context=False)) from None
        documents = actions.documents_from_json(body.documents)
    else:
        raise HTTPException(415, f"unsupported content type {content_type!r}: send application/json or multipart/form-data")
    return {"documents": actions.submit_documents(jobs, documents)}


async def _uploaded(request: Request) -> list[SourceDocument]:
    form = await request.form(max_files=1000, max_fields=100)
    uploads = [value for value in form.getlist("files") if isinstance(value, UploadFile)]
    if not uploads:
        raise DocumentError("multipart request without files: send them in form field `files`")
    documents: list[SourceDocument] = []
    for upload in uploads:
        # converting a PDF or an Office file takes CPU time: off the event loop, which keeps serving other requests
        documents += await run_in_threadpool(load_upload, upload.filename or "upload.txt", await upload.read())
    return documents


@router.get("/documents", dependencies=read_access, summary="Submitted documents, newest first")
def list_documents(jobs: JobsDep, status: JobStatus | None = None, limit: int = Query(50, ge=1, le=1000),
                   offset: int = Query(0, ge=0, le=1_000_000_000)) -> dict[str, Any]:
    found, total = jobs.list(status, limit, offset)
    return {"documents": [j.to_dict() for j in found], "total": total, "limit": limit, "offset": offset, "counts": jobs.counts()}


@router.get("/documents/{doc_id}", dependencies=read_access, summary="A document's indexing status")
def get_document(doc_id: str, queue: QueueDep, index: IndexDep) -> dict[str, Any]:
    return actions.document_status(queue, index, doc_id)


@router.delete("/documents/{doc_id}", status_code=202, dependencies=write_access,
               summary="Delete a document (202, status deleting, then 404): what only it supported goes, shared nodes lose its support")
def delete_document(doc_id: str, jobs: JobsDep, index: IndexDep) -> dict[str, Any]:
    return actions.delete_document(jobs, index, doc_id)


@router.post("/documents/{doc_id}/retry", status_code=202, dependencies=write_access, summary="Queue a failed document again")
def retry_document(doc_id: str, jobs: JobsDep) -> dict[str, Any]:
    job = jobs.get(doc_id)
    if job is None:
        raise HTTPException(404, f"no submitted document {doc_id!r}")
    if job.status != "failed":
        raise HTTPException(409, f"{doc_id} is {job.status}; only failed documents can be retried")
    retried = jobs.retry(doc_id)
    if retried is None:  # deleted since the check above
        raise HTTPException(404, f"no submitted document {doc_id!r}")
    return retried.to_dict()
