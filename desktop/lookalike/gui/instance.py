"""One window per user and data folder: a second start hands its photos to the first.

The first window listens on a local socket (QLocalServer) named after the app
and its data folder. ``lookalike PHOTO`` (or "Open with Lookalike") while a
window runs connects to it, sends the photos as one JSON line and waits for
the answer: the running window raises itself and searches those photos alone,
and the second process exits with status 0 without opening a window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from lookalike import APP_ID

log = logging.getLogger(__name__)

# How long a second start waits for the running window (connecting, then its answer).
CONNECT_MS = 1500
ANSWER_MS = 3000


def server_name(data_dir: Path) -> str:
    """The socket's name: one per user and data folder (tests and LOOKALIKE_HOME get their own)."""
    key = hashlib.sha1(os.fsencode(os.path.abspath(data_dir))).hexdigest()[:12]
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return f"{APP_ID}-{user}-{key}"


def hand_over(name: str, photos: Sequence[str]) -> bool:
    """Give ``photos`` to the window already running under ``name``.

    True when a running window took them (it answered); False when none runs
    (or it did not answer), so this process opens the window itself.
    """
    sock = QLocalSocket()
    sock.connectToServer(name)
    if not sock.waitForConnected(CONNECT_MS):
        return False
    try:
        sock.write((json.dumps({"photos": list(photos)}) + "\n").encode())
        if not sock.waitForBytesWritten(ANSWER_MS):
            return False
        answer = b""
        while not answer.endswith(b"\n"):
            if not sock.waitForReadyRead(ANSWER_MS):
                return False
            answer += bytes(sock.readAll().data())
        return answer.strip() == b"ok"
    finally:
        sock.disconnectFromServer()


class InstanceServer(QObject):
    """The running window's end: emits ``photos_received`` for each later start."""

    photos_received = Signal(list)  # list[str]: the photos (empty: just show the window)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> bool:
        """Start listening; a socket file left by a window that crashed is removed first.

        Call only after :func:`hand_over` found no window answering.
        """
        if self._server.listen(self.name):
            return True
        QLocalServer.removeServer(self.name)  # stale: no one answered on it
        ok = self._server.listen(self.name)
        if not ok:
            log.warning("cannot listen on %s: %s", self.name, self._server.errorString())
        return ok

    @property
    def listening(self) -> bool:
        return self._server.isListening()

    def close(self) -> None:
        self._server.close()

    def _on_connection(self) -> None:
        while self._server.hasPendingConnections():
            sock = self._server.nextPendingConnection()
            if sock is None:
                break
            self._buffers[sock] = b""
            sock.readyRead.connect(lambda s=sock: self._on_ready(s))
            sock.disconnected.connect(lambda s=sock: self._forget(s))

    def _forget(self, sock: QLocalSocket) -> None:
        self._buffers.pop(sock, None)
        sock.deleteLater()

    def _on_ready(self, sock: QLocalSocket) -> None:
        data = self._buffers.get(sock, b"") + bytes(sock.readAll().data())
        if b"\n" not in data:
            self._buffers[sock] = data[-65536:]
            return
        line = data.split(b"\n", 1)[0]
        self._buffers[sock] = b""
        try:
            message = json.loads(line)
            photos = [str(p) for p in message.get("photos", []) if isinstance(p, str)]
        except (ValueError, AttributeError):
            log.warning("a second start sent something unreadable: %r", line[:200])
            sock.write(b"bad\n")
            sock.flush()
            return
        sock.write(b"ok\n")
        sock.flush()
        self.photos_received.emit(photos)
