"""Serving overhead of Triton Inference Server: N client streams against one server vs the
local process, same run, same clips, loopback.

    python bench/triton_serving.py --artifacts artifacts/tevit [--streams 1 4 8] [--frames 45]
        [--size 360x640] [--rounds 2] [--max-queue-delay-us 2000] [--instances 1]
        [--server-threads 0] [--local-threads 0] [--server-env .venv-serve]

- local: the N streams in this process through the batched multi-stream runtime
  (``runtime.multistream.MultiStreamPipeline``, one onnxruntime session).
- triton: a real ``tritonserver`` (python kind, ``python -m export.triton``) on free loopback
  ports; N ``Pipeline`` threads, each with its own ``--backend triton`` client, as N cameras
  would be; windows meet in Triton's dynamic batcher.
For each N: aggregate frames/s (all frames / wall time), p95 frame latency (arrival to final
result), Triton's batch-size histogram (executions per batch size, from the statistics
extension) and the mean batch (``nv_inference_count`` / ``nv_inference_exec_count`` from the
metrics endpoint), and whether every stream's tracks equal the local run's. Overhead =
1 - triton frames/s / local frames/s; goal <= 15 % at N = 4. Throughput is the best of
``--rounds`` alternating rounds (other jobs on a shared machine only ever slow a round down).
Prints markdown for docs/notes/lab-notebook.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from export.triton.__main__ import main as export_triton  # noqa: E402
from runtime.backends import open_backend  # noqa: E402
from runtime.manifest import load_manifest  # noqa: E402
from runtime.pipeline import Pipeline  # noqa: E402
from runtime.serving.process import TritonServer, free_tcp_ports  # noqa: E402
from runtime.serving.server import Ports  # noqa: E402


def write_clip(path: Path, frames: int, size: tuple[int, int], seed: int) -> Path:
    """An MP4 of coloured squares moving over a noisy background (one layout per seed)."""
    rng = np.random.default_rng(seed)
    h, w = size
    background = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    starts = rng.uniform(0, 0.6, (3, 2)) * (h, w)
    speeds = rng.uniform(-3, 3, (3, 2))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (w, h))
    for t in range(frames):
        image = background.copy()
        for k, colour in enumerate(((230, 30, 30), (30, 230, 30), (30, 30, 230))):
            y, x = (starts[k] + speeds[k] * t).astype(int) % (h - 60, w - 60)
            image[y:y + 60, x:x + 60] = colour
        writer.write(image)
    writer.release()
    return path


def tracks(results) -> list[tuple]:
    return [(r.index, tuple(r.track_ids), tuple(r.labels), tuple(np.round(r.scores, 4)))
            for r in results]


def run_streams(make_pipeline, clips: list[Path]) -> tuple[float, list[float], list[list]]:
    """Each clip through its own pipeline in a thread: wall s, latencies ms, tracks per clip.
    Pipelines are built (and their clients connected) before the clock starts."""
    out: list[list] = [[] for _ in clips]
    pipelines = [make_pipeline() for _ in clips]

    def one(i: int) -> None:
        out[i] = list(pipelines[i].run(str(clips[i])))
        pipelines[i].close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clips))]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return wall, [r.latency_ms for rs in out for r in rs], [tracks(rs) for rs in out]


def run_local(art: Path, clips: list[Path], threads: int
              ) -> tuple[float, list[float], list[list], str]:
    """The N clips through the batched multi-stream runtime (one session, built before the
    clock starts): wall s, latencies ms, tracks per clip, what ran."""
    from runtime.multistream import MultiStreamPipeline

    names = [f"s{i}" for i in range(len(clips))]
    results: dict[str, list] = {n: [] for n in names}
    multi = MultiStreamPipeline(art, dict(zip(names, map(str, clips))), device="cpu",
                                threads=threads)
    start = time.perf_counter()
    for stream_id, result in multi.run():
        results[stream_id].append(result)
    wall = time.perf_counter() - start
    multi.close()
    latencies = [r.latency_ms for rs in results.values() for r in rs]
    return wall, latencies, [tracks(results[n]) for n in names], "MultiStreamPipeline (batched)"


def server_counts(server: TritonServer, model: str) -> tuple[dict[int, int], int, int]:
    """(executions per batch size, nv_inference_count, nv_inference_exec_count)."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(server.grpc_address)
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    histogram = {int(b["batch_size"]): int(b["compute_infer"]["count"])
                 for b in stats.get("batch_stats", [])}
    with urllib.request.urlopen(server.metrics_url, timeout=5) as reply:
        text = reply.read().decode()
    counts = {}
    for metric in ("nv_inference_count", "nv_inference_exec_count"):
        found = re.search(rf'^{metric}{{model="{model}",version="1"}} (\d+)', text, re.M)
        counts[metric] = int(found.group(1)) if found else 0
    return histogram, counts["nv_inference_count"], counts["nv_inference_exec_count"]


def cpu_seconds(server_pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, or of ``server_pid`` and its descendants
    (tritonserver and its Python-backend stubs), from /proc."""
    if server_pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, total, grown = {server_pid}, 0.0, True
    while grown:
        grown = False
        for pid, (ppid, _) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grown = True
    for pid in tree:
        total += stats.get(pid, (0, 0.0))[1]
    return total


def timed(run, server_pid: int | None = None):
    """``run()`` and the CPU seconds it cost this process (+ the server tree when given)."""
    before = cpu_seconds(), cpu_seconds(server_pid) if server_pid else 0.0
    result = run()
    after = cpu_seconds(), cpu_seconds(server_pid) if server_pid else 0.0
    return result, (after[0] - before[0]) + (after[1] - before[1])


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def measure(local_art: Path, art: Path, server: TritonServer, model: str, clips: list[Path],
            rounds: int, local_threads: int) -> dict:
    """Alternating local / triton rounds for one N; best throughput of each. ``local_art``:
    the artifact directory; ``art``: the repository's copy of its manifest (the clients')."""
    local_best = remote_best = None
    before = server_counts(server, model)
    for _ in range(rounds):
        local = timed(lambda: run_local(local_art, clips, local_threads))
        if local_best is None or local[0][0] < local_best[0][0]:
            local_best = local
        remote = timed(lambda: run_streams(lambda: Pipeline(art, backend=open_backend(
            load_manifest(art), "triton", server=server.grpc_address, model=model)), clips),
            server.process.pid)
        if remote_best is None or remote[0][0] < remote_best[0][0]:
            remote_best = remote
    after = server_counts(server, model)
    (local_best, local_cpu), (remote_best, remote_cpu) = local_best, remote_best
    histogram = {b: after[0].get(b, 0) - before[0].get(b, 0) for b in after[0]}
    frames = sum(len(t) for t in local_best[2])
    return {"frames": frames, "local_fps": frames / local_best[0],
            "triton_fps": frames / remote_best[0], "local_p95": p95(local_best[1]),
            "triton_p95": p95(remote_best[1]), "local_kind": local_best[3],
            "local_cpu_ms": local_cpu * 1e3 / frames, "triton_cpu_ms": remote_cpu * 1e3 / frames,
            "histogram": {b: n for b, n in sorted(histogram.items()) if n},
            "mean_batch": (after[1] - before[1]) / max(1, after[2] - before[2]),
            "same_tracks": local_best[2] == remote_best[2]}


def table(rows: dict[int, dict], args, manifest) -> str:
    lines = [f"Artifact `{args.artifacts}` ({manifest.model} {manifest.data['preset']}, input "
             f"{manifest.input_hw[0]}x{manifest.input_hw[1]}, window {manifest.window[0]}/"
             f"{manifest.window[1]}, batch max {manifest.batch_range[2]}); {args.frames} frames "
             f"per stream at {args.size}; max_queue_delay {args.max_queue_delay_us} µs; best of "
             f"{args.rounds} rounds; {args.instances} Triton instance(s) with "
             f"{args.server_threads or 'default'} onnxruntime thread(s). Local: "
             f"{next(iter(rows.values()))['local_kind']}, {args.local_threads or 'default'} "
             "onnxruntime thread(s). Load average at the end: "
             f"{os.getloadavg()[0]:.1f}.",
             "",
             "| N | local frames/s | Triton frames/s | overhead | local p95 ms | Triton p95 ms "
             "| CPU ms/frame local | CPU ms/frame Triton (client + server) "
             "| Triton executions by batch size | mean batch | tracks identical |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, r in rows.items():
        hist = ", ".join(f"{b}: {c}" for b, c in r["histogram"].items()) or "-"
        lines.append(f"| {n} | {r['local_fps']:.1f} | {r['triton_fps']:.1f} | "
                     f"{1 - r['triton_fps'] / r['local_fps']:+.0%} | {r['local_p95']:.0f} | "
                     f"{r['triton_p95']:.0f} | {r['local_cpu_ms']:.0f} | "
                     f"{r['triton_cpu_ms']:.0f} | {hist} | {r['mean_batch']:.2f} | "
                     f"{'yes' if r['same_tracks'] else 'NO'} |")
    lines += ["", f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} "
              "CPUs shared by the server, the clients and other jobs; Python "
              f"{platform.python_version()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", required=True)
    p.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--frames", type=int, default=45)
    p.add_argument("--size", default="360x640")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-queue-delay-us", type=int, default=2000)
    p.add_argument("--instances", type=int, default=1, help="Triton model instances")
    p.add_argument("--server-threads", type=int, default=0,
                   help="onnxruntime intra-op threads per Triton instance (0: its default)")
    p.add_argument("--local-threads", type=int, default=0,
                   help="onnxruntime intra-op threads of the local session (0: its default)")
    p.add_argument("--server-env", default=None)
    args = p.parse_args(argv)
    manifest = load_manifest(args.artifacts)
    size = tuple(int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench-triton-"))
    clips = [write_clip(work / f"s{i}.mp4", args.frames, size, seed=i)
             for i in range(max(args.streams))]
    assert export_triton([args.artifacts, "--repository", str(work / "repo"),
                          "--max-queue-delay-us", str(args.max_queue_delay_us),
                          "--instances", str(args.instances),
                          "--threads", str(args.server_threads)]) == 0
    art = work / "repo" / manifest.model  # the repository's manifest copy
    with TritonServer(work / "repo", ports=Ports(*free_tcp_ports(3)),
                      server_env=args.server_env, log_path=work / "server.log") as server:
        local_art = Path(args.artifacts)
        measure(local_art, art, server, manifest.model, clips[:1], 1, args.local_threads)
        rows = {n: measure(local_art, art, server, manifest.model, clips[:n], args.rounds,
                           args.local_threads) for n in args.streams}
    print(table(rows, args, manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
