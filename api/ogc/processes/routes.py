"""The /ogc/processes and /ogc/jobs routes (OGC API - Processes - Part 1: Core).

Process lists and descriptions come from pygeoapi (``describe_processes``, our plugins); the
list shows only the processes the caller's role may run. Execution and jobs are ours (see
docs/processes.md for why): every execution is a job row owned by the caller, run in the
bounded pool of ``runner.py``; a job another caller owns is, for this caller, not there (404).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pygeoapi.api.processes import describe_processes
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep
from api.ogc import bridge
from api.ogc.context import RequestContext
from api.ogc.errors import ForbiddenError, InvalidParameterError, NotFoundError, OgcError, UnavailableError
from api.ogc.processes import execute
from api.ogc.processes.descriptions import PROCESSES, allowed
from api.ogc.processes.runner import JobRunner, QueueFullError, wait
from api.ogc.routes import OgcRoute
from layers import jobs
from layers.db import Principal, transaction

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ogc", route_class=OgcRoute, tags=["OGC API - Processes"])
RESULTS = "http://www.opengis.net/def/rel/ogc/1.0/results"
MAX_JOBS_PAGE = 1000


class NoSuchJobError(NotFoundError):
    code = "NoSuchJob"


class NoSuchProcessError(NotFoundError):
    code = "NoSuchProcess"


class ResultNotReadyError(NotFoundError):
    code = "ResultNotReady"


class JobFailedError(OgcError):
    code = "JobFailed"

    def __init__(self, description: str, *, client: bool) -> None:
        super().__init__(description)
        self.status = 400 if client else 500  # type: ignore[assignment]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:  # noqa: ANN401
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _runner(request: Request) -> JobRunner:
    runner = getattr(request.app.state, "processes", None)
    if runner is None:
        raise UnavailableError("the job runner is not running (database unreachable at startup)")
    return runner


def _base(request: Request) -> str:
    public = getattr(request.app.state.settings, "public_url", None)
    return (public or str(request.base_url)).rstrip("/") + "/ogc"


def _process(process_id: str, principal: Principal) -> dict[str, Any]:
    spec = PROCESSES.get(process_id)
    if spec is None:
        raise NoSuchProcessError(f"process {process_id[:100]!r} not found")
    if not allowed(process_id, principal.role):
        raise ForbiddenError(f"process {process_id!r} is not available to role {principal.role!r}")
    return spec


def _may_run_any(principal: Principal) -> None:
    if not any(allowed(pid, principal.role) for pid in PROCESSES):
        raise ForbiddenError(f"role {principal.role!r} may not run processes, so it has no jobs")


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def status_document(job: jobs.Job, base: str) -> dict[str, Any]:
    href = f"{base}/jobs/{job.id}"
    links = [{"href": href, "rel": "self", "type": "application/json", "title": "job status"}]
    if job.status == "successful":
        links.append(
            {"href": f"{href}/results", "rel": RESULTS, "type": "application/json", "title": "job results"}
        )
    return {
        "type": "process",
        "processID": job.process_id,
        "jobID": job.id,
        "status": job.status,
        "message": job.message,
        "progress": job.progress,
        "created": _iso(job.created),
        "started": _iso(job.started),
        "finished": _iso(job.finished),
        "updated": _iso(job.updated),
        "links": links,
    }


# -- processes ------------------------------------------------------------------------------------
@router.get("/processes", summary="Processes")
async def processes(request: Request, principal: PrincipalDep) -> Response:
    service = request.app.state.ogc
    api = await service.api(str(request.base_url), principal)
    req = await bridge.api_request(request, api)
    response = await bridge.call(describe_processes, api, req, ctx=RequestContext(principal))
    return bridge.reshape_json(response, lambda doc: _filter_list(doc, principal))


def _filter_list(doc: dict[str, Any], principal: Principal) -> None:
    doc["processes"] = [p for p in doc.get("processes", []) if allowed(p.get("id", ""), principal.role)]
    for p in doc["processes"]:
        p["jobControlOptions"] = PROCESSES[p["id"]]["metadata"]["jobControlOptions"]


@router.get("/processes/{process_id}", summary="A process description")
async def process(request: Request, process_id: str, principal: PrincipalDep) -> Response:
    _process(process_id, principal)
    service = request.app.state.ogc
    api = await service.api(str(request.base_url), principal)
    req = await bridge.api_request(request, api)
    response = await bridge.call(describe_processes, api, req, process_id, ctx=RequestContext(principal))

    def fix(doc: dict[str, Any]) -> None:
        doc["jobControlOptions"] = PROCESSES[process_id]["metadata"]["jobControlOptions"]

    return bridge.reshape_json(response, fix)


@router.post("/processes/{process_id}/execution", summary="Execute a process")
async def execution(request: Request, process_id: str, principal: PrincipalDep) -> Response:
    _process(process_id, principal)
    runner = _runner(request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidParameterError("the request body must be a JSON object with 'inputs'") from None
    if not isinstance(body, dict):
        raise InvalidParameterError("the request body must be a JSON object with 'inputs'")
    unknown = sorted(set(body) - {"inputs", "outputs", "response", "subscriber"})
    if unknown:
        raise InvalidParameterError(
            f"unknown member(s) of the execute request: {', '.join(u[:40] for u in unknown[:5])}"
        )
    if body.get("subscriber") is not None:
        raise InvalidParameterError("callbacks (subscriber) are not supported: poll /ogc/jobs/{jobId}")
    if body.get("response", "document") not in ("raw", "document"):
        raise InvalidParameterError("'response' must be raw or document")
    prepared = await run_in_threadpool(
        execute.prepare, process_id, body.get("inputs", {}), runner.engine, principal, runner.limits
    )
    asynchronous = "respond-async" in request.headers.get("prefer", "").replace(" ", "").lower().split(",")
    base = _base(request)
    try:
        job, future = await run_in_threadpool(
            runner.submit, prepared, principal, base, mode="async" if asynchronous else "sync"
        )
    except QueueFullError as exc:
        raise UnavailableError(str(exc)) from None
    if asynchronous:
        return _json(
            status_document(job, base),
            201,
            {"Location": f"{base}/jobs/{job.id}", "Preference-Applied": "respond-async"},
        )
    outcome = await wait(future)
    link = f'<{base}/jobs/{job.id}>; rel="monitor"'
    if outcome.status == "successful":
        return _json(outcome.outputs, 200, {"Link": link})
    if outcome.status == "dismissed":
        raise NoSuchJobError(f"job {job.id} was dismissed while it ran")
    raise JobFailedError(f"job {job.id} failed: {outcome.message}", client=outcome.client_error)


# -- jobs -----------------------------------------------------------------------------------------
def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterError(f"{name}: an integer is expected") from None
    if not lo <= value <= hi:
        raise InvalidParameterError(f"{name}: must be between {lo} and {hi}")
    return value


@router.get("/jobs", summary="Jobs")
async def job_list(request: Request, principal: PrincipalDep) -> Response:
    _may_run_any(principal)
    runner = _runner(request)
    limit = _int_param(request, "limit", 100, 1, MAX_JOBS_PAGE)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    process_id = request.query_params.get("processID")
    if process_id is not None and process_id not in PROCESSES:
        raise InvalidParameterError(f"processID: unknown process {process_id[:100]!r}")
    status = request.query_params.get("status")
    statuses = tuple(status.split(",")) if status else None
    if statuses and not set(statuses) <= set(jobs.STATUSES):
        raise InvalidParameterError(f"status: one or more of {', '.join(jobs.STATUSES)}")

    def read() -> tuple[list[jobs.Job], int]:
        with transaction(runner.engine, principal) as conn:
            return jobs.listing(conn, limit=limit, offset=offset, process_id=process_id, status=statuses)

    found, total = await run_in_threadpool(read)
    base = _base(request)
    links = [
        {"href": f"{base}/jobs?limit={limit}&offset={offset}", "rel": "self", "type": "application/json"}
    ]
    if offset + len(found) < total:
        links.append(
            {
                "href": f"{base}/jobs?limit={limit}&offset={offset + limit}",
                "rel": "next",
                "type": "application/json",
            }
        )
    return _json({"jobs": [status_document(j, base) for j in found], "numberMatched": total, "links": links})


async def _job(request: Request, principal: Principal, job_id: str) -> tuple[JobRunner, jobs.Job]:
    _may_run_any(principal)
    runner = _runner(request)

    def read() -> jobs.Job | None:
        with transaction(runner.engine, principal) as conn:
            return jobs.get(conn, job_id)

    job = await run_in_threadpool(read)
    if job is None:
        raise NoSuchJobError(f"job {job_id[:100]!r} not found")
    return runner, job


@router.get("/jobs/{job_id}", summary="Status of a job")
async def job_status(request: Request, job_id: str, principal: PrincipalDep) -> Response:
    _, job = await _job(request, principal, job_id)
    return _json(status_document(job, _base(request)))


@router.delete("/jobs/{job_id}", summary="Dismiss a job")
async def job_dismiss(request: Request, job_id: str, principal: PrincipalDep) -> Response:
    runner, _ = await _job(request, principal, job_id)

    def dismiss() -> jobs.Job | None:
        with transaction(runner.engine, principal) as conn:
            return jobs.dismiss(conn, job_id)

    job = await run_in_threadpool(dismiss)
    if job is None:
        raise NoSuchJobError(f"job {job_id[:100]!r} not found")
    return _json(status_document(job, _base(request)))


@router.get("/jobs/{job_id}/results", summary="Results of a job")
async def job_results(request: Request, job_id: str, principal: PrincipalDep) -> Response:
    runner, job = await _job(request, principal, job_id)
    if job.status in ("accepted", "running"):
        raise ResultNotReadyError(f"job {job.id} is {job.status}: no results yet")
    if job.status == "dismissed":
        raise NoSuchJobError(f"job {job.id} was dismissed: its results are gone")
    if job.status == "failed":
        raise JobFailedError(
            f"job {job.id} failed: {job.message}", client=not job.message.startswith("internal")
        )

    def read() -> dict[str, Any] | None:
        with transaction(runner.engine, principal) as conn:
            return jobs.results(conn, job.id)

    return _json(await run_in_threadpool(read))
