"""The stand-in's own credentials, and the SigV4 check every AWS call and control route passes.

Like AWS, the stand-in answers only requests signed with credentials it issued: it makes
a fresh set at start (an ``ASIA...`` key id, secret and session token, as the temporary
credentials of a Studio or notebook role), and recomputes each request's signature with
botocore's own canonicalisation (``SigV4Auth``), honouring the client's SignedHeaders. Both
forms are accepted: the Authorization header and a presigned query (``X-Amz-Signature``).
"""

from __future__ import annotations

import calendar
import datetime
import functools
import hmac
import os
import re
import secrets
import string
import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Optional
from urllib.parse import unquote

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = 300  # seconds, as AWS: a signature older or newer than 5 minutes is refused
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_KEY_ALPHABET = string.ascii_uppercase + "234567"
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_BASIC_ISO8601 = re.compile(r"\d{8}T\d{6}Z")
_HEADER_NAME = re.compile(r"[a-z0-9-]+")


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str

    @classmethod
    def generate(cls) -> Credentials:
        key_id = "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        return cls(key_id, secrets.token_urlsafe(30), secrets.token_urlsafe(96))

    def env(self) -> dict:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_SESSION_TOKEN": self.token,
        }

    def write(self, path: Path) -> None:
        """An AWS shared-credentials file (profile ``default``), readable by its owner only."""
        text = (
            "[default]\n"
            f"aws_access_key_id = {self.access_key}\n"
            f"aws_secret_access_key = {self.secret_key}\n"
            f"aws_session_token = {self.token}\n"
        )
        path.unlink(missing_ok=True)  # O_EXCL below: never write into someone else's file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)

    def __repr__(self) -> str:  # never print the secret or the token
        return f"Credentials(access_key={self.access_key!r})"


class AuthError(Exception):
    """Why a request was refused; ``kind`` picks the AWS error code (see ``ERRORS``)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


# kind -> (code of JSON/REST services, code of query services (STS, IAM), HTTP status)
ERRORS = {
    "missing": ("MissingAuthenticationTokenException", "MissingAuthenticationToken", 403),
    "incomplete": ("IncompleteSignatureException", "IncompleteSignature", 400),
    "unknown": ("UnrecognizedClientException", "InvalidClientTokenId", 403),
    "signature": ("InvalidSignatureException", "SignatureDoesNotMatch", 403),
}
_UNKNOWN = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)


def verify(environ: dict, body: bytes, credentials: Credentials, now: Optional[float] = None):
    """Raise AuthError unless the WSGI request is signed with ``credentials``."""
    query = environ.get("QUERY_STRING", "")
    header = environ.get("HTTP_AUTHORIZATION")
    if header is not None:
        fields = _authorization_fields(header)
        token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
        timestamp = environ.get("HTTP_X_AMZ_DATE", "")
        expires = None
    elif "X-Amz-Signature=" in query:
        fields, token, timestamp, expires, query = _presigned_fields(query)
    else:
        raise AuthError("missing", "Missing Authentication Token")

    credential = fields["Credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request":
        message = "Credential should be scoped to a valid region, a service and aws4_request."
        raise AuthError("incomplete", message)
    key_id, day, region, service, _ = credential
    if not hmac.compare_digest(key_id.encode(), credentials.access_key.encode()):
        raise AuthError("unknown", _UNKNOWN)
    if token is None or not hmac.compare_digest(token.encode(), credentials.token.encode()):
        raise AuthError("unknown", _UNKNOWN)
    signed_at = _parse_timestamp(timestamp)
    if day != timestamp[:8]:
        raise AuthError("signature", f"Date in Credential scope does not match {timestamp[:8]}.")
    _check_time(signed_at, expires, now)

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    signer = SigV4Auth(BotoCredentials(key_id, credentials.secret_key), service, region)
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), url=f"http://h/?{query}")
    request.context["timestamp"] = timestamp
    canonical = _canonical_request(signer, request, environ, body, fields["SignedHeaders"], expires)
    string_to_sign = signer.string_to_sign(request, canonical)
    key = _signing_key(credentials.secret_key, day, region, service)
    expected = signer._sign(key, string_to_sign, hex=True)
    if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
        raise AuthError("signature", _MISMATCH)


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """SigV4Auth.signature's key derivation, kept: it changes once a day per service."""
    from botocore.auth import SigV4Auth

    sign_with = SigV4Auth(None, service, region)._sign
    key = sign_with(f"AWS4{secret}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = sign_with(key, part)
    return key


def _authorization_fields(header: str) -> dict:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError("incomplete", f"Unsupported algorithm {algorithm[:40]!r}: use {ALGORITHM}.")
    fields = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value
    _require(fields, "Authorization header")
    return fields


def _presigned_fields(query: str):
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    params = {unquote(name): unquote(value) for name, _, value in pairs}
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise AuthError("incomplete", f"X-Amz-Algorithm must be {ALGORITHM}.")
    fields = {
        "Credential": params.get("X-Amz-Credential"),
        "SignedHeaders": params.get("X-Amz-SignedHeaders"),
        "Signature": params.get("X-Amz-Signature"),
    }
    _require({k: v for k, v in fields.items() if v is not None}, "presigned query")
    try:
        expires = int(params.get("X-Amz-Expires", ""))
    except ValueError:
        raise AuthError("incomplete", "X-Amz-Expires must be a number of seconds.") from None
    # The signature covers the query without itself.
    unsigned = "&".join(
        name + sep + value for name, sep, value in pairs if unquote(name) != "X-Amz-Signature"
    )
    return (
        fields,
        params.get("X-Amz-Security-Token"),
        params.get("X-Amz-Date", ""),
        expires,
        unsigned,
    )


def _require(fields: dict, where: str) -> None:
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise AuthError("incomplete", f"The {where} requires a '{name}' parameter.")
    if not _HEX_SIGNATURE.fullmatch(fields["Signature"]):
        raise AuthError("signature", _MISMATCH)


def _parse_timestamp(timestamp: str) -> float:
    if not _BASIC_ISO8601.fullmatch(timestamp):
        raise AuthError("incomplete", "The request needs an X-Amz-Date in ISO 8601 basic format.")
    t = timestamp
    try:  # strptime costs 15 us a call; this is on every request
        moment = datetime.datetime(
            int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[9:11]), int(t[11:13]), int(t[13:15])
        )
    except ValueError:
        raise AuthError("incomplete", f"X-Amz-Date {timestamp} is not a date.") from None
    return calendar.timegm(moment.timetuple())


def _check_time(signed_at: float, expires: Optional[int], now: Optional[float]) -> None:
    now = time.time() if now is None else now
    late = signed_at + (expires if expires is not None else MAX_SKEW)
    if now > late or signed_at > now + MAX_SKEW:
        stamp = datetime.datetime.fromtimestamp(signed_at, datetime.timezone.utc)
        clock = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        raise AuthError(
            "signature",
            f"Signature expired: {stamp.strftime(_TIMESTAMP)} is now earlier or later than "
            f"the server's {clock.strftime(_TIMESTAMP)} allows (5 min.).",
        )


def _canonical_request(signer, request, environ, body, signed_headers, expires) -> str:
    """botocore's canonical request over the headers the client says it signed."""
    from botocore.auth import UNSIGNED_PAYLOAD
    from botocore.awsrequest import HTTPHeaders

    headers = HTTPHeaders()
    for name in signed_headers.split(";"):
        if not _HEADER_NAME.fullmatch(name):
            raise AuthError("incomplete", "SignedHeaders must be lower-case header names.")
        value = _header(environ, name)
        if value is None:
            raise AuthError("signature", f"The signed header {name} is not in the request.")
        headers[name] = value
    raw_path = environ.get("RAW_URI", "").partition("?")[0] or environ.get("PATH_INFO", "/")
    # S3 alone signs the path as sent; every other service signs it normalised and re-quoted.
    path = raw_path if signer._service_name == "s3" else signer._normalize_url_path(raw_path)
    if expires is not None and signer._service_name == "s3":
        payload = UNSIGNED_PAYLOAD  # a presigned S3 URL does not sign the body
    else:
        digest = sha256(body).hexdigest()
        payload = environ.get("HTTP_X_AMZ_CONTENT_SHA256") or digest
        if payload not in (UNSIGNED_PAYLOAD, digest):
            raise AuthError("signature", "X-Amz-Content-SHA256 does not match the body.")
    return "\n".join(
        (
            request.method.upper(),
            path,
            signer.canonical_query_string(request),
            signer.canonical_headers(headers) + "\n",
            signer.signed_headers(headers),
            payload,
        )
    )


def _header(environ: dict, name: str) -> Optional[str]:
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + name.replace("-", "_").upper())


def sign(
    credentials: Credentials,
    method: str,
    url: str,
    body: bytes = b"",
    region: str = "us-east-1",
    service: str = "standin",
) -> dict:
    """Headers that sign a request with botocore's SigV4 signer (for the control routes;
    ``curl --aws-sigv4 aws:amz:REGION:standin`` with the same key signs them too)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(method=method, url=url, data=body)
    boto = BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    SigV4Auth(boto, service, region).add_auth(request)
    return dict(request.headers.items())
