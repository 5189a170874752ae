# Over 300 lines: one attempt over HTTP, from payload and auth to the bounded read and the classified error, read in one place.
"""Delivery of one job over HTTP (docs/design.md (Targets and payloads); docs/design.md (Errors, Retries)): build the payload, POST it with the target's
authentication and the job's idempotency headers, and turn every failure into a classified,
redacted ``PublishError``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.auth import HTTPBasicAuth
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict

from publishing.adapters.capacity import job_slots
from publishing.adapters.http_deadline import DeadlineAdapter, attempt_deadline
from publishing.alert import EnrichedAlert
from publishing.classification import ErrorType, ExceptionTable, classify, classify_status
from publishing.delivery import Receipt
from publishing.errors import (
    PermanentPublishError,
    PublishError,
    RateLimitedError,
    TransientPublishError,
    UnknownPublishError,
)
from publishing.formatters import format_payload, request_url
from publishing.retry import parse_retry_after
from publishing.targets import Target, TargetType

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_MAX_S = 5.0
BODY_EXCERPT_CHARS = 200
# Of a target's answer we keep at most this much of the raw (never decompressed) body: enough
# for an error excerpt, and a 10 GB body or a gzip bomb costs a worker nothing. It is read in
# small pieces so the attempt's deadline is checked between them.
RESPONSE_EXCERPT_BYTES = 64 * 1024
READ_CHUNK_BYTES = 8 * 1024
# Statuses whose Retry-After we honour as a rate limit (docs/design.md (Errors, Retries)).
RATE_LIMIT_STATUS = frozenset({429, 503})
# Targets whose 429 says when to come back in its JSON body (``retry_after``, seconds), more
# precisely than a Retry-After header (Discord's is a float; Teams may send no header).
RETRY_AFTER_IN_BODY = frozenset({TargetType.MSTEAMS, TargetType.DISCORD})
_ERROR_CLASSES: dict[ErrorType, type[PublishError]] = {
    ErrorType.TRANSIENT: TransientPublishError,
    ErrorType.PERMANENT: PermanentPublishError,
    ErrorType.UNKNOWN: UnknownPublishError,
}
_SECRET_PREFIX = "whsec_"
# Refuses every cookie a target sets.
_NO_COOKIES = DefaultCookiePolicy(allowed_domains=[])
# requests' own exceptions, subclasses before their bases (SSLError and ConnectTimeout are
# ConnectionErrors; InvalidURL is a ValueError).
REQUESTS_TABLE: ExceptionTable = (
    (requests.exceptions.SSLError, ErrorType.PERMANENT),
    (requests.exceptions.InvalidURL, ErrorType.PERMANENT),
    (requests.exceptions.MissingSchema, ErrorType.PERMANENT),
    (requests.exceptions.InvalidSchema, ErrorType.PERMANENT),
    (requests.exceptions.InvalidHeader, ErrorType.PERMANENT),
    (requests.exceptions.Timeout, ErrorType.TRANSIENT),
    (requests.exceptions.ConnectionError, ErrorType.TRANSIENT),
    (requests.exceptions.ChunkedEncodingError, ErrorType.TRANSIENT),
)


class AttemptTimeout(Exception):
    """The attempt's deadline passed while the answer was still coming: a timeout."""


def classify_request_error(exc: BaseException) -> ErrorType:
    """How a failure raised by ``requests`` is classified."""
    return classify(exc, REQUESTS_TABLE)


@dataclass(frozen=True, slots=True, eq=False)
class HttpPublisher:
    session: requests.Session
    _: KW_ONLY
    default_timeout_s: float
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    user_agent: str = field(init=False, default_factory=lambda: f"alert-publishing/{_version()}")

    def publish(self, target: Target, enriched: EnrichedAlert, job_id: str) -> Receipt:
        body = _serialise(target, format_payload(target, enriched, job_id))
        headers, auth = self._request_headers(target, job_id, body)
        timeout_s = target.timeout_s or self.default_timeout_s
        started = self.clock()
        # The whole attempt (connect, send, headers, the bounded read) ends by this deadline: a
        # socket timeout alone bounds each wait, and a byte every second would never trip it.
        deadline = self.monotonic() + timeout_s
        try:
            # The wait for the answer head is cut at the deadline too (a header trickled byte by
            # byte); the body is read against it below.
            with attempt_deadline(time.monotonic() + timeout_s) as watch:
                response = self.session.post(
                    request_url(target, enriched),
                    data=body,
                    headers=headers,
                    auth=auth,
                    timeout=(min(timeout_s, CONNECT_TIMEOUT_MAX_S), timeout_s),
                    # A 301/302 would turn the POST into a bodiless GET that may well answer 200.
                    allow_redirects=False,
                    stream=True,
                )
        except requests.RequestException as exc:
            if watch.fired:
                timed_out = AttemptTimeout(f"timed out: no complete answer within {timeout_s:g} s")
                raise _request_failed(target, timed_out, TransientPublishError) from None
            raise _request_failed(target, exc, _ERROR_CLASSES[classify_request_error(exc)]) from exc
        except ValueError as exc:
            # urllib3 rejects some malformed hosts with a bare ValueError; retrying cannot help.
            raise _request_failed(target, exc, PermanentPublishError) from exc
        try:
            head = self._read_head(response, deadline, timeout_s)
        except AttemptTimeout as exc:
            raise _request_failed(target, exc, TransientPublishError) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _request_failed(target, exc, TransientPublishError) from exc
        finally:
            response.close()
        duration_s = max(0.0, self.clock() - started)
        if 200 <= response.status_code < 300:
            log.debug(
                "job %s delivered to target %s: HTTP %d in %.3f s",
                job_id,
                target.name,
                response.status_code,
                duration_s,
            )
            return Receipt(response.status_code, duration_s)
        raise self._rejected(target, response, head)

    def _read_head(self, response: requests.Response, deadline: float, timeout_s: float) -> bytes:
        """At most ``RESPONSE_EXCERPT_BYTES`` of the raw body, as it came on the wire (a
        compressed body stays compressed), by ``deadline``. A body that ends in time leaves the
        connection reusable; the caller closes anything longer."""
        raw = response.raw
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        saved_timeout = sock.gettimeout() if sock is not None else None
        head = bytearray()
        try:
            while len(head) < RESPONSE_EXCERPT_BYTES:
                remaining_s = deadline - self.monotonic()
                if remaining_s <= 0:
                    raise AttemptTimeout(f"timed out: no complete answer within {timeout_s:g} s")
                if sock is not None:
                    # No single wait for the next piece may outlast the attempt either.
                    sock.settimeout(remaining_s)
                want = min(READ_CHUNK_BYTES, RESPONSE_EXCERPT_BYTES - len(head))
                piece = raw.read1(want, decode_content=False)
                if not piece:
                    break
                head += piece
        except urllib3.exceptions.ReadTimeoutError:
            raise AttemptTimeout(f"timed out: no complete answer within {timeout_s:g} s") from None
        finally:
            if sock is not None and sock.fileno() != -1:
                sock.settimeout(saved_timeout)
        return bytes(head)

    def _request_headers(
        self, target: Target, job_id: str, body: bytes
    ) -> tuple[CaseInsensitiveDict[str], HTTPBasicAuth | None]:
        # The target's own headers may replace the defaults but never the protocol headers.
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(
            {"Content-Type": "application/json", "User-Agent": self.user_agent}
        )
        headers.update(target.headers)
        headers["Idempotency-Key"] = job_id
        auth = None
        if target.type is TargetType.ROOTLY and target.api_token:
            headers["Authorization"] = f"Bearer {target.api_token}"
        if target.type is TargetType.OPSGENIE and target.api_key:
            headers["Authorization"] = f"GenieKey {target.api_key}"
        if target.type is TargetType.WEBHOOK:
            if target.bearer_token:
                headers["Authorization"] = f"Bearer {target.bearer_token}"
            elif target.basic_auth:
                auth = HTTPBasicAuth(target.basic_auth.username, target.basic_auth.password)
            timestamp = str(int(self.clock()))
            headers["webhook-id"] = job_id
            headers["webhook-timestamp"] = timestamp
            if target.signing_secret:
                headers["webhook-signature"] = _signature(target, job_id, timestamp, body)
        return headers, auth

    def _rejected(self, target: Target, response: requests.Response, body: bytes) -> PublishError:
        status = response.status_code
        message = f"HTTP {status} from target {target.name!r}"
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if body and encoding not in ("", "identity"):
            # Decompressing it is what a gzip bomb wants; its text is not worth the risk.
            message += f": ({encoding}-encoded body not shown)"
        else:
            # Decode only the head of the body: enough to redact a secret that straddles the cut.
            excerpt = " ".join(body[: BODY_EXCERPT_CHARS * 20].decode("utf-8", "replace").split())
            if excerpt:
                message += f": {_scrub(target, excerpt)[:BODY_EXCERPT_CHARS]}"
        log.info("delivery to target %s rejected: %s", target.name, message)
        retry_after_header = response.headers.get("Retry-After")
        if status in RATE_LIMIT_STATUS and (status == 429 or retry_after_header is not None):
            now = datetime.fromtimestamp(self.clock(), UTC)
            retry_after_s = parse_retry_after(retry_after_header, now)
            if status == 429 and target.type in RETRY_AFTER_IN_BODY:
                retry_after_s = _body_retry_after(body) or retry_after_s
            return RateLimitedError(message, status_code=status, retry_after_s=retry_after_s)
        return _ERROR_CLASSES[classify_status(status)](message, status_code=status)


def _body_retry_after(body: bytes) -> float | None:
    """``retry_after`` (seconds) from a JSON answer, at its top level or under ``error``."""
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(answer, dict):
        return None
    nested = answer.get("error")
    for value in (answer.get("retry_after"), nested.get("retry_after") if isinstance(nested, dict) else None):
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < float("inf"):
            return float(value)
    return None


def _serialise(target: Target, payload: dict[str, Any]) -> bytes:
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise PermanentPublishError(
            f"payload the formatter cannot build: not JSON for target {target.name!r}: "
            + _scrub(target, str(exc))[:BODY_EXCERPT_CHARS]
        ) from exc


def _signature(target: Target, job_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    secret = target.signing_secret or ""
    if secret.startswith(_SECRET_PREFIX):
        encoded = secret[len(_SECRET_PREFIX) :]
        try:
            # Padding is optional, as in the reference libraries that decode leniently.
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            raise PermanentPublishError(
                f"target {target.name!r}: signing_secret starts with {_SECRET_PREFIX!r} "
                "but the rest is not base64"
            ) from None
    else:
        key = secret.encode()
    signed = f"{job_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _request_failed(target: Target, exc: Exception, error_class: type[PublishError]) -> PublishError:
    message = _scrub(target, f"request to target {target.name!r} failed: {type(exc).__name__}: {exc}")
    message = message[: BODY_EXCERPT_CHARS * 3]
    log.info("delivery to target %s failed: %s", target.name, message)
    return error_class(message)


def _scrub(target: Target, text: str) -> str:
    """Redact the target's secrets (its URL's path and query included, as requests quotes them apart)."""
    try:
        return target.redact(text)
    except ValueError:
        # A URL that cannot even be split cannot be redacted piece by piece: keep none of the text.
        return "(details withheld: the target's URL cannot be parsed)"


def _version() -> str:
    try:
        return metadata.version("alert-publishing")
    except metadata.PackageNotFoundError:
        return "0"


# Connections kept alive to one target: this many, or one a job slot of an I/O pool worker.
POOL_MAXSIZE_MIN = 32


class _SlotSizedAdapter(DeadlineAdapter):
    """Sizes a target's pool at its first request, once the worker knows its job slots."""

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        self.poolmanager.connection_pool_kw["maxsize"] = max(POOL_MAXSIZE_MIN, job_slots() or 0)
        return super().get_connection_with_tls_context(*args, **kwargs)


# Hosts whose proxy settings a session remembers; beyond that it starts again (a bound, not a
# limit: a fleet has a few dozen targets).
_ENVIRONMENT_HOSTS = 1024


class _Session(requests.Session):
    """Reads the environment's proxy and CA-bundle settings once a host. requests reads them on
    every request (every variable scanned, ``no_proxy`` matched: about 4 % of an I/O pool
    worker's CPU a job); a running worker's environment does not change. What it merges is
    requests' own ``merge_environment_settings``, for a request that names no proxies."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        if not self.trust_env or proxies or verify not in (True, None):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        scheme, netloc = urlsplit(url)[:2]
        found = self._environment.get((scheme, netloc))
        if found is None:
            if len(self._environment) >= _ENVIRONMENT_HOSTS:
                self._environment.clear()
            merged = super().merge_environment_settings(url, {}, None, verify, None)
            found = {"proxies": merged["proxies"], "verify": merged["verify"]}
            self._environment[(scheme, netloc)] = found
        return {
            "proxies": dict(found["proxies"]),
            "stream": merge_setting(stream, self.stream),
            "verify": found["verify"],
            "cert": merge_setting(cert, self.cert),
        }


def http_session() -> requests.Session:
    """One session for every job of the process, shared by an I/O pool's greenlets or threads:
    urllib3's pools are safe so, and no cookie jar carries one job's state to the next."""
    session = _Session()
    session.cookies.set_policy(_NO_COOKIES)
    # Keep connections alive across jobs; never retry inside requests (a retry is Celery's).
    adapter = _SlotSizedAdapter(pool_connections=32, pool_maxsize=POOL_MAXSIZE_MIN, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
