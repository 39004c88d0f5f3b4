"""``--backend triton`` against a real Triton Inference Server (tritonserver 2.51 from the
nvidia-pytriton wheel, started by ``runtime.serving`` on free loopback ports, once per module):
windows, streams and concurrent streams give what the local backend gives; the dynamic batcher
gathers windows of several clients and each gets its own rows back; a server killed mid-stream
loses no finished frame, and one that comes back lets the stream finish.

Needs the [serve] extra (tritonclient) and the server environment (.venv-serve; created here
when missing, as `make serve-env` does). Config parsing for every kind: tests/export/
test_export_triton.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rt_fixtures as F

from export.triton.__main__ import main as export_main
from runtime.backends import open_backend
from runtime.errors import ArtifactError, BackendUnavailableError
from runtime.manifest import load_manifest
from runtime.pipeline import Pipeline
from runtime.serving.process import TritonServer, free_tcp_ports
from runtime.serving.server import Ports, default_server_env, find_install
from runtime.sources import ReconnectPolicy, open_source
from runtime.sources.base import FrameSource
from runtime.stream import main as stream_main

pytest.importorskip("tritonclient.grpc", reason="needs tritonclient[grpc]: pip install -e "
                    "'.[serve]' (make test installs it)")


@pytest.fixture(scope="module")
def server_env() -> Path:
    """The server's Python environment; created (as make serve-env does) when missing."""
    from runtime.serving.environment import create_server_env

    env = default_server_env()
    try:
        find_install(env)
    except BackendUnavailableError:
        try:
            create_server_env(env)
            find_install(env)
        except BackendUnavailableError as err:
            pytest.skip(f"no Triton server environment ({err}); run `make serve-env`")
    return env


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, tiny_tevit_artifacts) -> dict[str, Path]:
    """Artifacts served by the module's server: the contract graph, its two-stage split with
    content_hw (IFC-like), a fixed-T graph (VisTR-like) and the tiny TeViT export."""
    root = tmp_path_factory.mktemp("triton_art")
    return {"contract": F.build_contract_artifacts(root / "contract"),
            "batch4": F.build_contract_artifacts(root / "batch4", batch_max=4),
            "twostage": F.build_two_stage_contract_artifacts(root / "twostage",
                                                             clip_content_hw=True),
            "fixed": F.build_contract_artifacts(root / "fixed", fixed_frames=8),
            "tevit": Path(tiny_tevit_artifacts)}


def write_repository(artifacts: dict[str, Path], repository: Path, *extra: str) -> Path:
    for name, art in artifacts.items():
        assert export_main([str(art), "--repository", str(repository), "--name", name,
                            *extra]) == 0
    return repository


def start_server(repository: Path, server_env: Path, log: Path,
                 ports: Ports | None = None) -> TritonServer:
    ports = ports or Ports(*free_tcp_ports(3))
    return TritonServer(repository, ports=ports, server_env=server_env, log_path=log).start()


@pytest.fixture(scope="module")
def server(artifacts, server_env, tmp_path_factory):
    root = tmp_path_factory.mktemp("triton_repo")
    repo = write_repository(artifacts, root / "repo")
    # a second contract model whose batcher waits long enough for concurrent clients to meet
    assert export_main([str(artifacts["contract"]), "--repository", str(repo), "--name",
                        "batched", "--max-queue-delay-us", "500000"]) == 0
    running = start_server(repo, server_env, root / "server.log")
    yield running
    running.stop()


def triton(art: Path, server: TritonServer, model: str, **options):
    return open_backend(load_manifest(art), "triton", server=server.grpc_address, model=model,
                        **options)


def random_windows(art: Path, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    manifest = load_manifest(art)
    h, w = manifest.input_hw
    t = manifest.frames_range[2] if manifest.fixed_frames else 5
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (batch, t, h, w, 3), dtype=np.uint8)
    content = np.array([[h, w], [h - 32, w - 32]][:batch] * (batch // 2 + 1), np.int32)[:batch]
    return frames, content


def assert_same_outputs(got: dict, want: dict) -> None:
    for name, value in want.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("model", ["contract", "twostage", "fixed", "tevit"])
def test_windows_match_the_local_backend(server, artifacts, model):
    frames, content = random_windows(artifacts[model], 2, seed=3)
    with open_backend(load_manifest(artifacts[model]), "onnxruntime", device="cpu") as local:
        want = local.infer(frames, content)
    with triton(artifacts[model], server, model) as remote:
        assert_same_outputs(remote.infer(frames, content), want)
        assert_same_outputs(remote.infer(frames[1:], content[1:]),
                            {k: v[1:] for k, v in want.items()})


def test_dynamic_batcher_gathers_clients_and_returns_each_its_rows(server, artifacts):
    art = artifacts["contract"]
    frames, _ = random_windows(art, 2, seed=5)
    with open_backend(load_manifest(art), "onnxruntime", device="cpu") as local:
        want = [local.infer(frames[i:i + 1]) for i in range(2)]
    got: dict[int, dict] = {}

    def client(i: int) -> None:
        with triton(art, server, "batched") as remote:
            got[i] = remote.infer(frames[i:i + 1])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for i in range(2):
        assert_same_outputs(got[i], want[i])
    assert _batch_sizes(server, "batched") == {2: 1}  # both windows in one execution


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_stream_through_triton_writes_what_the_local_backend_writes(server, artifacts, tmp_path):
    frames, _ = F.make_clip(31)
    clip = F.write_mp4(tmp_path / "clip.mp4", frames)
    common = [str(clip), "--quiet", "--device", "cpu"]
    assert stream_main(common + ["--artifacts", str(artifacts["contract"]), "--events",
                                 str(tmp_path / "local.jsonl")]) == 0
    assert stream_main(common + ["--artifacts", str(artifacts["contract"]), "--events",
                                 str(tmp_path / "triton.jsonl"), "--backend", "triton",
                                 "--server", server.grpc_address, "--model", "contract"]) == 0
    local, remote = _events(tmp_path / "local.jsonl"), _events(tmp_path / "triton.jsonl")
    assert len(local) == 31 and remote == local


def _tracks(results) -> list[tuple]:
    return [(r.index, tuple(r.track_ids), tuple(r.labels), tuple(np.round(r.scores, 5)),
             tuple(np.round(r.boxes, 2).ravel())) for r in results]


def test_four_concurrent_streams_give_the_local_tracks(server, artifacts, tmp_path):
    """Four single-stream pipelines in threads share one server (their windows meet in its
    dynamic batcher); each stream's tracks equal its local run."""
    clips = [F.make_clip(n, size, objects=objects)[0] for n, size, objects in (
        (23, (90, 160), None), (30, (120, 160), {0: ((20, 10), (1.0, 2.0))}),
        (17, (64, 96), {1: ((10, 60), (0.0, -1.5)), 2: ((30, 5), (0.0, 1.0))}),
        (26, (100, 100), {0: ((5, 5), (2.0, 2.0)), 2: ((60, 60), (-1.0, -1.0))}))]
    paths = [F.write_folder(tmp_path / f"s{i}", c) for i, c in enumerate(clips)]
    art = artifacts["contract"]
    local = [_tracks(Pipeline(art, device="cpu").run(str(p))) for p in paths]
    remote: dict[int, list] = {}

    def stream(i: int) -> None:
        with Pipeline(art, backend=triton(art, server, "contract")) as pipeline:
            remote[i] = _tracks(pipeline.run(str(paths[i])))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [remote.get(i) for i in range(4)] == local
    assert [len(t) for t in local] == [23, 30, 17, 26]


def _batch_sizes(server: TritonServer, model: str) -> dict[int, int]:
    import tritonclient.grpc as grpcclient

    stats = grpcclient.InferenceServerClient(server.grpc_address).get_inference_statistics(
        model, as_json=True)["model_stats"][0]
    return {int(b["batch_size"]): int(b["compute_infer"]["count"])
            for b in stats.get("batch_stats", [])}


def test_four_streams_of_one_process_through_triton_write_the_local_outputs(server, artifacts,
                                                                            tmp_path):
    """``python -m runtime.stream A B C D --backend triton``: the multi-stream runtime batches
    the four streams' windows and sends them to Triton; every stream's events equal the local
    backend's."""
    clips = [F.write_mp4(tmp_path / f"{name}.mp4", F.make_clip(n, size)[0]) for name, n, size in
             (("a", 20, (90, 160)), ("b", 14, (120, 100)), ("c", 9, (60, 200)),
              ("d", 17, (100, 100)))]
    common = [*map(str, clips), "--artifacts", str(artifacts["batch4"]), "--outputs", "events",
              "--device", "cpu", "--quiet", "--max-batch-wait-ms", "200"]
    before = _batch_sizes(server, "batch4")
    assert stream_main(common + ["--out-dir", str(tmp_path / "local"),
                                 "--backend", "onnxruntime"]) == 0
    assert stream_main(common + ["--out-dir", str(tmp_path / "triton"), "--backend", "triton",
                                 "--server", server.grpc_address, "--model", "batch4"]) == 0
    for name, frames in zip("abcd", (20, 14, 9, 17), strict=True):
        local = _events(tmp_path / "local" / name / "events.jsonl")
        assert len(local) == frames
        assert _events(tmp_path / "triton" / name / "events.jsonl") == local
    after = _batch_sizes(server, "batch4")
    assert max(b for b in after if after[b] > before.get(b, 0)) > 1  # streams met in a batch


def test_refusals_before_the_first_frame(server, artifacts, tmp_path, capsys):
    clip = F.write_mp4(tmp_path / "c.mp4", F.make_clip(6)[0])
    base = [str(clip), "--quiet", "--artifacts", str(artifacts["contract"])]
    (nothing,) = free_tcp_ports(1)
    assert stream_main(base + ["--backend", "triton", "--server", f"127.0.0.1:{nothing}"]) == 2
    assert "python -m runtime.serve" in capsys.readouterr().err
    assert stream_main(base + ["--backend", "triton", "--server", "host-without-port"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert stream_main(base + ["--server", server.grpc_address]) == 2
    assert "only apply to --backend triton" in capsys.readouterr().err
    with pytest.raises(ArtifactError, match="another manifest"):
        triton(artifacts["fixed"], server, "contract").activate()


class KillingSource(FrameSource):
    """A real file source that runs ``action`` once ``after`` frames were read (the moment a
    server dies mid-stream, made exact). Everything else is the wrapped source's."""

    def __init__(self, source: FrameSource, after: int, action) -> None:  # no super(): delegate
        self.source, self.after, self.action = source, after, action
        self.description, self.is_live = source.description, source.is_live

    def __getattr__(self, name):
        return getattr(self.source, name)

    def close(self) -> None:
        self.source.close()

    def __iter__(self):
        for frame in self.source:
            if frame.index == self.after:
                self.action()
            yield frame


def _run_cli_with(argv: list[str], after: int, action) -> int:
    """``python -m runtime.stream`` start-up and run, with ``action`` after ``after`` frames."""
    from runtime.stream_cli import _run, _setup, build_parser

    args = build_parser().parse_args(argv)
    source, pipeline, sinks = _setup(args)
    return _run(args, KillingSource(source, after, action), pipeline, sinks)


class RetryLog(logging.Handler):
    """Counts the backend's "retry N of M in S s" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.waits = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.waits += "retry" in record.getMessage()


@pytest.fixture
def own_server(contract_artifacts, server_env, tmp_path):
    """A server of this test alone (it gets killed)."""
    repo = write_repository({"contract": contract_artifacts}, tmp_path / "repo")
    running = start_server(repo, server_env, tmp_path / "server.log")
    yield running
    running.stop()


def test_server_killed_mid_stream_loses_no_finished_frame(own_server, contract_artifacts,
                                                          tmp_path, capsys):
    clip = F.write_mp4(tmp_path / "clip.mp4", F.make_clip(40)[0])
    art = str(contract_artifacts)
    assert stream_main([str(clip), "--quiet", "--artifacts", art, "--events",
                        str(tmp_path / "local.jsonl")]) == 0
    capsys.readouterr()
    retries = RetryLog()
    logging.getLogger("runtime.backends").addHandler(retries)
    try:
        code = _run_cli_with([str(clip), "--artifacts", art, "--backend", "triton", "--server",
                              own_server.grpc_address, "--server-retries", "2", "--events",
                              str(tmp_path / "e.jsonl")], after=20, action=own_server.kill)
    finally:
        logging.getLogger("runtime.backends").removeHandler(retries)
    err = capsys.readouterr().err
    assert code == 1 and "no Triton server answered after 3 round(s)" in err
    assert retries.waits == 2  # the budget once: the final flush tried once more, no backoff
    written = _events(tmp_path / "e.jsonl")
    assert 10 <= len(written) < 40  # frames finished before the server died
    assert f"Stopped by an error: {len(written)} frames" in err
    assert written == _events(tmp_path / "local.jsonl")[:len(written)]


def test_stream_continues_when_the_server_comes_back(own_server, contract_artifacts, server_env,
                                                     tmp_path):
    art = contract_artifacts
    clip = F.write_folder(tmp_path / "clip", F.make_clip(40)[0])
    local = _tracks(Pipeline(art, device="cpu").run(str(clip)))
    ports, revived = own_server.ports, []

    def kill_then_restart() -> None:
        own_server.kill()
        threading.Thread(target=lambda: (time.sleep(1.0), revived.append(start_server(
            own_server.repository, server_env, tmp_path / "again.log", ports)))).start()

    backend = triton(art, own_server, "contract", retry=ReconnectPolicy(max_attempts=8))
    try:
        with Pipeline(art, backend=backend) as pipeline:
            source = KillingSource(open_source(str(clip)), 12, kill_then_restart)
            assert _tracks(pipeline.run(source)) == local
    finally:
        deadline = time.monotonic() + 60
        while not revived and time.monotonic() < deadline:
            time.sleep(0.1)
        for server in revived:
            server.stop()
    assert revived, "the server did not come back"


def test_comma_list_fails_over_to_the_next_server_at_once(own_server, server, contract_artifacts,
                                                          tmp_path):
    art = contract_artifacts
    clip = F.write_folder(tmp_path / "clip", F.make_clip(40)[0])
    local = _tracks(Pipeline(art, device="cpu").run(str(clip)))
    backend = open_backend(load_manifest(art), "triton", model="contract",
                           server=f"{own_server.grpc_address},{server.grpc_address}")
    retries = RetryLog()
    logging.getLogger("runtime.backends").addHandler(retries)
    try:
        with Pipeline(art, backend=backend) as pipeline:
            source = KillingSource(open_source(str(clip)), 12, own_server.kill)
            assert _tracks(pipeline.run(source)) == local
            assert pipeline.backend.server == server.grpc_address
    finally:
        logging.getLogger("runtime.backends").removeHandler(retries)
    assert retries.waits == 0  # the second server took over without a backoff
