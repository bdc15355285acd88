"""Fetch model weights over HTTPS with progress, cancel, bounded timeouts and atomic writes.

One small downloader for every encoder, so that each one behaves the same way
when the network is out of reach: a :class:`ModelUnavailableError` with one
line saying what could not be fetched and what to do instead, within
``CONNECT_TIMEOUT`` seconds, never a hang and never a traceback.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from lookalike.core.errors import ModelUnavailableError
from lookalike.core.progress import CancelToken, ProgressCallback, RateMeter, Stage
from lookalike.core.runtime import models as runtime

log = logging.getLogger(__name__)

# Seconds to wait for a connection, and for each read once connected. A
# download that keeps moving is never cut short; one that stalls is.
CONNECT_TIMEOUT = float(os.environ.get("LOOKALIKE_DOWNLOAD_TIMEOUT", "15"))
CHUNK = 1 << 20
USER_AGENT = "lookalike (model download)"


class NotFoundOnServer(ModelUnavailableError):
    """The server answered, but has no such file (HTTP 404)."""


def _offline_message(what: str, url: str, reason: str, hint: str) -> str:
    host = urlsplit(url).hostname or url
    msg = f"Cannot download {what}: {host} is out of reach ({reason})."
    return f"{msg} {hint}".strip()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "no DNS answer; is this machine offline?"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or exc.__class__.__name__


def fetch(
    url: str,
    dest: Path,
    *,
    what: str,
    hint: str = "",
    sha256_prefix: str = "",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    timeout: float | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (atomically) and return ``dest``.

    ``sha256_prefix``: when given, the file's sha256 must start with it.
    Raises ModelUnavailableError (offline, HTTP error, bad checksum) or
    progress.Cancelled.
    """
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    runtime.check(cancel)
    runtime.report(progress, 0, None, f"connecting to download {what}", stage=Stage.DOWNLOAD)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # https URLs we build
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NotFoundOnServer(f"Cannot download {what}: the server has no such file (HTTP 404).") from None
        raise ModelUnavailableError(
            f"Cannot download {what}: the server answered HTTP {exc.code} {exc.reason}. {hint}".strip()
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ModelUnavailableError(_offline_message(what, url, _reason(exc), hint)) from None

    from lookalike.core.store.fsutil import atomic_path

    total = resp.headers.get("Content-Length")
    total_bytes = int(total) if total and total.isdigit() else None
    meter = RateMeter()
    done = 0
    h = hashlib.sha256()
    last_report = 0.0
    with resp, atomic_path(dest) as tmp, open(tmp, "wb") as out:
        while True:
            runtime.check(cancel)
            try:
                chunk = resp.read(CHUNK)
            except (OSError, ValueError) as exc:
                raise ModelUnavailableError(
                    _offline_message(what, url, f"the download stopped: {_reason(exc)}", hint)
                ) from None
            if not chunk:
                break
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            now = time.monotonic()
            if now - last_report > 0.1:
                last_report = now
                rate = meter.update(done)
                mb = f"{done / 1e6:.0f}" + (f" of {total_bytes / 1e6:.0f}" if total_bytes else "")
                runtime.report(progress, done, total_bytes, f"downloading {what}: {mb} MB", rate, stage=Stage.DOWNLOAD)
        if total_bytes is not None and done != total_bytes:
            raise ModelUnavailableError(
                _offline_message(what, url, f"the download ended early ({done} of {total_bytes} bytes)", hint)
            )
        if sha256_prefix and not h.hexdigest().startswith(sha256_prefix):
            raise ModelUnavailableError(f"The downloaded {what} is damaged (its checksum does not match); try again.")
    runtime.report(progress, done, total_bytes or done, f"downloaded {what}", stage=Stage.DOWNLOAD)
    log.info("downloaded %s (%d bytes) to %s", url, done, dest)
    return dest
