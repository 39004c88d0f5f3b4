"""``--view PORT``: the live overlay over HTTP (MJPEG), the tracks JSON, the page, and that
neither a slow encoder nor a slow viewer ever holds up the pipeline."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
import rt_fixtures as F

from runtime import Pipeline
from runtime.sinks import ViewSink, annotate
from runtime.sinks import view as view_module
from runtime.sinks.view import QUEUE_SIZE, tracks_json
from runtime.stream import main

# JPEG (quality 80) of the annotated frame vs the frame itself: mean abs difference per pixel
JPEG_MEAN_TOLERANCE = 4.0


@pytest.fixture(scope="module")
def results(contract_artifacts):
    """Real pipeline results (with images) for a clip of three moving coloured squares."""
    frames, _ = F.make_clip(12)
    with Pipeline(contract_artifacts, window=4, stride=2, keep_images=True,
                  device="cpu") as pipeline:
        out = pipeline.process(list(frames)) + pipeline.flush()
    assert len(out) == 12 and all(len(r) == 2 for r in out)  # red and green tracks
    return out


def _wait_for_frame(sink: ViewSink, index: int, timeout: float = 20.0) -> None:
    """Wait until the encoder has published frame ``index``."""
    deadline = time.monotonic() + timeout
    while sink.latest.frame_index != index:
        assert time.monotonic() < deadline, f"frame {index} never published"
        sink.latest.wait_newer(sink.latest.sequence, 0.5)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def _read_part(response) -> tuple[int, np.ndarray]:
    """One multipart part: (X-Frame-Index, decoded BGR image)."""
    headers = {}
    line = response.readline().strip()
    for _ in range(3):  # the boundary closes each part
        if line not in (b"", b"--visdeploy-frame"):
            break
        line = response.readline().strip()
    while line:
        name, value = line.decode().split(":", 1)
        headers[name.lower()] = value.strip()
        line = response.readline().strip()
    assert headers["content-type"] == "image/jpeg"
    jpeg = response.read(int(headers["content-length"]))
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "the part is not a decodable JPEG"
    return int(headers["x-frame-index"]), image


def _assert_is_overlay(image: np.ndarray, result) -> None:
    """``image`` (BGR) is the annotated frame of ``result``, not the raw frame."""
    overlay = annotate(result).astype(np.float32)
    raw = cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR).astype(np.float32)
    assert image.shape == overlay.shape
    assert np.abs(image - overlay).mean() < JPEG_MEAN_TOLERANCE
    inside = result.masks.any(axis=0)
    assert np.abs(image - raw)[inside].mean() > 20  # the tracks' colours are blended in


def _stream(url: str):
    connection = http.client.HTTPConnection(url.split("//")[1].rstrip("/"), timeout=10)
    connection.request("GET", "/stream.mjpg")
    response = connection.getresponse()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
    return connection, response


def test_http_client_reads_overlay_parts_tracks_and_page(results):
    sink = ViewSink(0)
    try:
        for result in results[:6]:
            sink.write(result)
        _wait_for_frame(sink, 5)  # the encoder catches up with the last write
        connection, response = _stream(sink.url)
        index, image = _read_part(response)  # a new viewer gets the newest frame at once
        assert index == 5
        _assert_is_overlay(image, results[5])
        writer = threading.Thread(target=lambda: [sink.write(r) for r in results[6:]])
        writer.start()
        seen = [index]
        while seen[-1] != 11:
            index, image = _read_part(response)
            assert index >= seen[-1]  # newest first: frames may be skipped or repeated
            _assert_is_overlay(image, results[index])
            seen.append(index)
        writer.join()
        connection.close()
        status, kind, body = _get(sink.url + "tracks.json")
        assert status == 200 and kind == "application/json"
        assert json.loads(body) == tracks_json(results[11])
        assert {t["class"] for t in json.loads(body)["tracks"]} == {"red", "green"}
        status, kind, body = _get(sink.url)
        assert status == 200 and kind.startswith("text/html")
        assert b'<img id="live" src="/stream.mjpg"' in body and b"/tracks.json" in body
        status, kind, body = _get(sink.url + "frame.jpg")
        assert status == 200 and kind == "image/jpeg"
        _assert_is_overlay(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR),
                           results[11])
        assert _get(sink.url + "nope")[0] == 404
    finally:
        sink.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(sink.url, timeout=2)  # the server is gone after close


def test_slow_encoder_drops_frames_and_never_blocks_write(results, monkeypatch):
    release = threading.Event()
    real_annotate = view_module.annotate

    def stalled(result, **kwargs):
        release.wait(30)
        return real_annotate(result, **kwargs)

    monkeypatch.setattr(view_module, "annotate", stalled)
    sink = ViewSink(0)
    try:
        done = threading.Event()
        frames = [results[i % len(results)] for i in range(40)]

        def write_all():
            for result in frames:
                sink.write(result)
            done.set()

        threading.Thread(target=write_all, daemon=True).start()
        assert done.wait(10), "write() blocked behind a stalled encoder"
        # one frame is in the encoder, QUEUE_SIZE wait, the rest were dropped
        assert sink.dropped >= len(frames) - QUEUE_SIZE - 1
        release.set()
        _wait_for_frame(sink, frames[-1].index)  # the newest frame is shown in the end
    finally:
        release.set()
        sink.close()


def test_a_viewer_that_stops_reading_holds_up_nobody(results):
    sink = ViewSink(0)
    try:
        stuck = socket.create_connection((sink.server.host, sink.server.port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
        done = threading.Event()

        def write_many():
            for i in range(300):
                sink.write(results[i % len(results)])
            done.set()

        threading.Thread(target=write_many, daemon=True).start()
        assert done.wait(30), "write() blocked behind a viewer that does not read"
        connection, response = _stream(sink.url)  # another viewer still gets frames
        index, image = _read_part(response)
        _assert_is_overlay(image, results[index])
        connection.close()
        stuck.close()
    finally:
        sink.close()


def test_cli_view_serves_while_streaming_and_refuses_bad_ports(contract_artifacts, tmp_path,
                                                               capsys, caplog):
    frames, _ = F.make_clip(8)
    clip = F.write_folder(tmp_path / "clip", frames)
    caplog.set_level("INFO", logger="runtime.view")
    code = main([str(clip), "--artifacts", str(contract_artifacts), "--device", "cpu",
                 "--quiet", "--view", "0", "--events", str(tmp_path / "e.jsonl")])
    assert code == 0
    assert "live view: http://127.0.0.1:" in caplog.text
    assert "output --view: 8 frames" in capsys.readouterr().err
    for port in ("70000", "-1"):
        assert main([str(clip), "--artifacts", str(contract_artifacts), "--view", port]) == 2
        assert "--view must be a TCP port" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert main([str(clip), "--artifacts", str(contract_artifacts), "--device", "cpu",
                     "--view", port]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser here (`make test` installs "
                    "Debian's chromium where it can, else apt-get install chromium); the "
                    "HTTP-client tests above cover the stream")
def test_headless_browser_shows_the_overlay_and_tracks(results, tmp_path):
    sink = ViewSink(0)
    try:
        for result in results:
            sink.write(result)
        _wait_for_frame(sink, results[-1].index)
        shot = tmp_path / "page.png"
        # --timeout: the MJPEG image never finishes loading; take the screenshot after 3 s
        subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                        "--window-size=400,300", "--timeout=3000", f"--screenshot={shot}",
                        sink.url], capture_output=True, timeout=120, check=False)
        page = cv2.imread(str(shot), cv2.IMREAD_COLOR)
        assert page is not None, "chromium wrote no screenshot"
        h, w = results[-1].size
        _assert_is_overlay(page[:h, :w], results[-1])  # the <img> sits at the top left
        below = page[h + 5:, :]
        assert (below > 150).any(), "no text (status line, tracks table) under the image"
    finally:
        sink.close()
