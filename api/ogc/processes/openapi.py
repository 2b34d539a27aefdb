"""The OpenAPI paths of /ogc/processes and /ogc/jobs, merged into /ogc/openapi (api/ogc/openapi.py).

Each process gets its own execution path with the request body its description declares, so
clients (and the schemathesis test) see the inputs' types and limits.
"""

from __future__ import annotations

from typing import Any

from api.ogc.processes.descriptions import PROCESSES

_ERR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}}
_OBJ = {"content": {"application/json": {"schema": {"type": "object"}}}}


def _responses(ok: str = "200", **extra: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        ok: {"description": "OK", **_OBJ},
        "400": {"description": "Invalid parameter (OGC exception)", **_ERR},
        "403": {"description": "Not for this role (OGC exception)", **_ERR},
        "404": {"description": "Not found (OGC exception)", **_ERR},
    }
    for code, text in extra.items():
        out[code] = {"description": text, **_OBJ}
    return out


def _job_id() -> dict[str, Any]:
    return {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}


def _oas30(schema: dict[str, Any]) -> dict[str, Any]:
    """A process input's JSON Schema as OpenAPI 3.0 has it: exclusive bounds are booleans there."""
    out = {k: _oas30(v) if isinstance(v, dict) else v for k, v in schema.items()}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(exclusive), int | float) and not isinstance(out[exclusive], bool):
            out[bound], out[exclusive] = out[exclusive], True
    return out


def _body(pid: str) -> dict[str, Any]:
    meta = PROCESSES[pid]["metadata"]
    props = {name: _oas30(spec["schema"]) for name, spec in meta["inputs"].items()}
    required = [name for name, spec in meta["inputs"].items() if spec.get("minOccurs", 0) > 0]
    inputs = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        inputs["required"] = required
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["inputs"], "properties": {"inputs": inputs}}
            }
        },
    }


def process_paths() -> dict[str, Any]:
    f = {"$ref": "#/components/parameters/f"}
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    }
    offset = {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
    tag = ["processes"]
    paths: dict[str, Any] = {
        "/processes": {
            "get": {
                "operationId": "getProcesses",
                "summary": "Processes the caller may run",
                "tags": tag,
                "parameters": [f],
                "responses": _responses(),
            }
        },
        "/jobs": {
            "get": {
                "operationId": "getJobs",
                "summary": "The caller's jobs",
                "tags": tag,
                "parameters": [limit, offset],
                "responses": _responses(),
            }
        },
        "/jobs/{jobId}": {
            "get": {
                "operationId": "getJob",
                "summary": "Status of a job",
                "tags": tag,
                "parameters": [_job_id()],
                "responses": _responses(),
            },
            "delete": {
                "operationId": "dismissJob",
                "summary": "Dismiss a job",
                "tags": tag,
                "parameters": [_job_id()],
                "responses": _responses(),
            },
        },
        "/jobs/{jobId}/results": {
            "get": {
                "operationId": "getJobResults",
                "summary": "Results of a job",
                "tags": tag,
                "parameters": [_job_id()],
                "responses": _responses(),
            }
        },
    }
    for pid in PROCESSES:
        op = pid.replace("-", "_")
        paths[f"/processes/{pid}"] = {
            "get": {
                "operationId": f"describe_{op}",
                "summary": f"Describe {pid}",
                "tags": tag,
                "parameters": [f],
                "responses": _responses(),
            }
        }
        paths[f"/processes/{pid}/execution"] = {
            "post": {
                "operationId": f"execute_{op}",
                "summary": f"Execute {pid} (Prefer: respond-async for a job)",
                "tags": tag,
                "requestBody": _body(pid),
                "responses": _responses(**{"201": "Job accepted (asynchronous); Location: the job"}),
            }
        }
    return paths
