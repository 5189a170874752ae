"""The OpenAPI 3.1 document, generated and served at ``GET /api/v2/openapi.json``.

Paths, methods and path parameters come from the app's routes, roles and query parameters from
each view's ``require``, body shapes from the models of ``api.schemas`` and caps from the app's
``Settings``, and what only a person can write (a summary per route, its tag, its answers and
the errors it may give) from the route table of ``api.schemas_routes``. A route without an
entry there fails the document."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel
from werkzeug.routing import Rule

from api.errors import NotFoundKind
from api.limits import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_URL_BYTES
from api.schemas_alerts import alert_schemas, ref
from api.schemas_query import Query
from api.schemas_routes import EXTRA_MODELS, JSON, OPERATIONS, Operation
from api.services import settings
from publishing.settings import Settings

bp = Blueprint("openapi", __name__)

URL = "/api/v2/openapi.json"
REF_TEMPLATE = "#/components/schemas/{model}"
EXTENSION = "publishing.openapi"
TAGS = ("alerts", "queue", "jobs", "dlq", "targets", "breakers", "health")
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
# Any request may be refused before its route reads it (``api.limits``): a NUL byte in the path
# or query (400), a URL (414) or a header (431) over its cap.
EVERY_OPERATION_ERRORS = (400, 414, 431)
_ERROR_EXAMPLES: Mapping[int, dict[str, Any]] = {
    404: {
        JSON: {
            "schema": ref("Error"),
            "example": {
                "error": "not_found",
                "message": "no dead letter 'nope'",
                "details": {"kind": NotFoundKind.DEAD_LETTER.value, "id": "nope"},
            },
        }
    },
}
_PATH_SCHEMAS: Mapping[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer"},
}


def _error_texts(settings: Settings) -> dict[int, str]:
    return {
        400: (
            "Malformed JSON, an invalid query parameter, or a NUL byte in the path or the query "
            "(details.parameter names it)."
        ),
        401: "No bearer token, or not a valid one.",
        403: "The token's role is too low.",
        404: (
            "No such resource: error not_found, details.kind says what "
            f"({', '.join(k.value for k in NotFoundKind)}) and details.id which."
        ),
        409: "Conflict: already replayed, not replayable now, or the target is disabled.",
        413: (
            f"The body is over {settings.max_body_bytes} bytes (PUBLISHING_MAX_BODY_BYTES), or holds "
            f"more than {settings.max_alerts_per_request} alerts (PUBLISHING_MAX_ALERTS_PER_REQUEST)."
        ),
        414: f"The URL is longer than {MAX_URL_BYTES} bytes.",
        422: "The body is JSON but not valid; details.problems lists each field and what is wrong.",
        431: (
            f"A header field (name and value) is longer than {MAX_HEADER_BYTES} bytes, or there are "
            f"more than {MAX_HEADER_FIELDS} of them."
        ),
        503: "Redis or the database is down; details.dependency says which.",
    }


def _schema_of(what: type[BaseModel] | str) -> dict[str, Any]:
    return ref(what if isinstance(what, str) else what.__name__)


class _Components:
    """Component schemas gathered from models; pydantic's ``$defs`` (nested models, enums)
    become components too."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, name: str, schema: dict[str, Any]) -> None:
        if self.schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")

    def model(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        for name, definition in schema.pop("$defs", {}).items():
            self.add(name, definition)
        return schema


def _query_parameters(model: type[Query], components: _Components) -> list[dict[str, Any]]:
    parameters = []
    for name, prop in components.model(model)["properties"].items():
        schema = {k: v for k, v in prop.items() if k not in ("title", "description")}
        alternatives = schema.pop("anyOf", None)
        if alternatives is not None:  # "X or null": a query parameter is absent instead
            (schema_of_value,) = [a for a in alternatives if a != {"type": "null"}]
            schema = {**schema_of_value, **{k: v for k, v in schema.items() if v is not None}}
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _path_of(rule: Rule, op: Operation) -> tuple[str, list[dict[str, Any]]]:
    parameters = []
    for converter, name in _CONVERTER.findall(rule.rule):
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": _PATH_SCHEMAS.get(converter)
                or getattr(rule.map.converters.get(converter), "openapi_schema", {"type": "string"}),
                "description": op.path.get(name, f"The {name.replace('_', ' ')}."),
            }
        )
    return _CONVERTER.sub(r"{\2}", rule.rule), parameters


def _operation(
    op: Operation, view: Callable[..., Any], path_params: list[dict[str, Any]], components: _Components
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": op.answered}
    if op.answer is not None:
        answer["content"] = {JSON: {"schema": _schema_of(op.answer)}}
    elif op.content is not None:
        answer["content"] = dict(op.content)
    if op.headers:
        answer["headers"] = {
            h: {"description": d, "schema": {"type": "string"}} for h, d in op.headers.items()
        }
    role = getattr(view, "required_role", None)
    errors = {*op.errors, *EVERY_OPERATION_ERRORS, *((401, 403) if role is not None else ())}
    responses: dict[str, Any] = {str(op.status): answer}
    for code in sorted(errors):
        if code in op.notes:
            responses[str(code)] = {
                "description": op.notes[code],
                "content": {JSON: {"schema": ref("Error")}},
            }
        else:
            responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    operation: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "responses": responses}
    if role is None:
        operation["security"] = []
    else:
        operation["description"] = f"Needs the {role.name.lower()} role."
    query = getattr(view, "query_model", None)
    parameters = [*path_params, *(_query_parameters(query, components) if query else [])]
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        body_schema = _schema_of(op.body)
        operation["requestBody"] = {"required": op.body_required, "content": {JSON: {"schema": body_schema}}}
    return operation


def _models(operations: Iterable[Operation]) -> list[type[BaseModel]]:
    found = [m for op in operations for m in (op.answer, op.body) if isinstance(m, type)]
    return list(dict.fromkeys([*found, *EXTRA_MODELS]))


def build_document(app: Flask, settings: Settings) -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    used = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        op = OPERATIONS.get(rule.endpoint)
        if op is None:
            raise LookupError(f"route {rule.rule} ({rule.endpoint}) has no entry in the route table")
        used.append(op)
        path, path_params = _path_of(rule, op)
        view = app.view_functions[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(op, view, path_params, components)
    for model in _models(used):
        components.add(model.__name__, components.model(model))
    for name, schema in alert_schemas(settings.max_alerts_per_request).items():
        components.add(name, schema)
    error = {JSON: {"schema": ref("Error")}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Alert publishing API",
            "version": "2.0.0",
            "description": (
                "Alerts in, jobs out to PagerDuty, Slack, Rootly and webhooks, with a dead-letter "
                "queue. Every error is {error, message, details}. Bearer tokens carry a role: "
                "reader (GETs) < operator (+ webhook and submit) < admin (+ replay, purge, breaker "
                "reset, target test). Only with PUBLISHING_INSECURE_NO_AUTH=1 (development) does "
                "the API run without tokens; then every caller is admin and /readyz says auth is off."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": t} for t in TAGS],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": components.schemas,
            "responses": {
                f"E{code}": {"description": text, "content": _ERROR_EXAMPLES.get(code, error)}
                for code, text in _error_texts(settings).items()
            },
        },
    }


def document_of(app: Flask) -> dict[str, Any]:
    """The app's document, built on first use (every route is registered by then) and kept."""
    document = app.extensions.get(EXTENSION)
    if document is None:
        with app.app_context():
            document = app.extensions[EXTENSION] = build_document(app, settings())
    return document


@bp.get(URL)
def openapi_json() -> ResponseReturnValue:
    return jsonify(document_of(current_app))
