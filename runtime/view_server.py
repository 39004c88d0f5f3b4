"""The HTTP side of ``--view PORT``: a page, an MJPEG stream and the current tracks.

Routes: ``/`` (the page: live overlay + a table of the current tracks), ``/stream.mjpg``
(``multipart/x-mixed-replace`` JPEG parts, each with ``X-Frame-Index``), ``/frame.jpg`` (the
latest overlay), ``/tracks.json`` (the latest frame's tracks). Each viewer is served by its own
thread and always gets the newest frame (repeated every ``WAIT_S`` while no new one comes): a
slow viewer skips frames and never holds up the pipeline or the other viewers. Standard library only (``http.server``).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from runtime.errors import SinkError

log = logging.getLogger("runtime.view")

BOUNDARY = "visdeploy-frame"
WAIT_S = 0.5  # without a new frame for this long, a viewer gets the latest one again

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>visdeploy live view</title>
<style>
body { margin: 0; background: #111; color: #ddd; font: 13px sans-serif; }
#live { display: block; }
table { border-collapse: collapse; margin: 8px; }
td, th { padding: 2px 8px; text-align: left; }
</style></head>
<body>
<img id="live" src="/stream.mjpg" alt="live overlay">
<div id="status">waiting for the first frame</div>
<table><thead><tr><th>track</th><th>class</th><th>score</th><th>box (x0, y0, x1, y1)</th></tr>
</thead><tbody id="tracks"></tbody></table>
<script>
async function refresh() {
  try {
    const state = await (await fetch("/tracks.json", {cache: "no-store"})).json();
    document.getElementById("status").textContent = state.frame === null ? "no frame yet" :
      `frame ${state.frame} at ${state.timestamp.toFixed(2)} s, ${state.tracks.length} tracks`;
    document.getElementById("tracks").innerHTML = state.tracks.map(t =>
      `<tr><td>#${t.track_id}</td><td>${t.class}</td><td>${t.score.toFixed(2)}</td>` +
      `<td>${t.box.map(v => v.toFixed(0)).join(", ")}</td></tr>`).join("");
  } catch (err) {
    document.getElementById("status").textContent = "stream ended";
  }
}
setInterval(refresh, 500);
refresh();
</script>
</body></html>
"""


class LatestFrame:
    """The newest JPEG overlay and its tracks, shared by the encoder and every viewer."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.sequence = 0
        self.jpeg: bytes | None = None
        self.frame_index: int | None = None
        self.tracks: dict = {"frame": None, "timestamp": None, "tracks": []}
        self.closed = False

    def publish(self, jpeg: bytes, frame_index: int, tracks: dict) -> None:
        with self._changed:
            self.sequence += 1
            self.jpeg, self.frame_index, self.tracks = jpeg, frame_index, tracks
            self._changed.notify_all()

    def wait_newer(self, sequence: int, timeout: float) -> int:
        """Block until a frame newer than ``sequence`` is published (or ``timeout`` or close);
        return the current sequence number."""
        with self._changed:
            self._changed.wait_for(lambda: self.sequence > sequence or self.closed, timeout)
            return self.sequence

    def snapshot(self) -> tuple[int, bytes | None, int | None]:
        with self._changed:
            return self.sequence, self.jpeg, self.frame_index

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()


class ViewHandler(BaseHTTPRequestHandler):
    """Serves one request; ``self.server.latest`` is the shared ``LatestFrame``."""

    server_version = "visdeploy-view"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        route = self.path.split("?", 1)[0]
        latest: LatestFrame = self.server.latest
        if route in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", PAGE.encode())
        elif route == "/tracks.json":
            self._send(200, "application/json", json.dumps(latest.tracks).encode())
        elif route == "/frame.jpg":
            _, jpeg, _ = latest.snapshot()
            if jpeg is None:
                self._send(503, "text/plain", b"no frame yet\n")
            else:
                self._send(200, "image/jpeg", jpeg)
        elif route == "/stream.mjpg":
            self._stream(latest)
        else:
            self._send(404, "text/plain", b"not found: try / /stream.mjpg /frame.jpg "
                                          b"/tracks.json\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, latest: LatestFrame) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        sent = 0
        try:
            self.wfile.write(f"--{BOUNDARY}\r\n".encode())
            while not latest.closed:
                newest = latest.wait_newer(sent, WAIT_S)
                if newest == 0 or latest.closed:
                    continue
                # a new frame, or after WAIT_S without one the same frame again: browsers
                # (Chromium) show a part only once more data follows it, and a paused source
                # must not leave a new viewer with an empty image
                sent, jpeg, index = latest.snapshot()
                self.wfile.write(
                    f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
                    f"X-Frame-Index: {index}\r\n\r\n".encode() + jpeg
                    + f"\r\n--{BOUNDARY}\r\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the viewer left

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        log.debug("%s %s", self.address_string(), format % args)


class ViewServer:
    """``ThreadingHTTPServer`` on ``host:port`` (port 0: any free port) in a daemon thread."""

    def __init__(self, latest: LatestFrame, *, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            self._server = ThreadingHTTPServer((host, port), ViewHandler)
        except OSError as err:
            raise SinkError(f"--view: cannot listen on {host}:{port}: {err.strerror or err}; "
                            "choose another port (--view 0 picks a free one)") from err
        self._server.daemon_threads = True
        self._server.latest = latest
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True,
                                        name="visdeploy-view")
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        """Stop accepting viewers and return; open streams end within ``WAIT_S``."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
