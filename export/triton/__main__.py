"""``python -m export.triton ARTIFACTS --repository DIR [--kind python|onnxruntime|tensorrt]``.

Writes ``DIR/<name>/`` (config.pbtxt, manifest.json, version 1) for Triton Inference Server;
serve it with ``python -m runtime.serve --repository DIR`` (python kind) or NVIDIA's Triton
image (onnxruntime, tensorrt kinds). Needs only the torch-free runtime.
"""

from __future__ import annotations

import argparse
import sys

from export.triton.config import BatchingOptions
from export.triton.repository import RepositoryError, RepositoryRequest, write_repository
from runtime.manifest import PRECISIONS, ArtifactError, ManifestError, load_manifest

INSTANCE_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.triton", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", help="artifact directory with manifest.json")
    p.add_argument("--repository", required=True, help="Triton model repository to write into")
    p.add_argument("--kind", default="python", choices=["python", "onnxruntime", "tensorrt"],
                   help="python: Triton's Python backend running visdeploy's onnxruntime "
                        "backends (what runs on CPU; two-stage artifacts keep their feature "
                        "cache); onnxruntime / tensorrt: Triton's own backends on GPU servers")
    p.add_argument("--name", help="model name (default: the manifest's model, e.g. tevit)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS)
    p.add_argument("--max-queue-delay-us", type=int, default=2000,
                   help="longest a window waits in Triton's queue for others to batch with "
                        "(default %(default)s µs)")
    p.add_argument("--preferred-batch", type=int, nargs="+", default=(),
                   help="preferred batch sizes (default: the manifest's opt and max batch)")
    p.add_argument("--instances", type=int, default=1, help="model instances (per GPU)")
    p.add_argument("--instance-kind", choices=sorted(INSTANCE_KINDS), default=None,
                   help="default: cpu for --kind python, gpu otherwise")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="--kind python: onnxruntime execution provider inside the server")
    p.add_argument("--threads", type=int, default=0,
                   help="--kind python: onnxruntime intra-op threads (0: its default)")
    p.add_argument("--overwrite", action="store_true", help="replace DIR/<name> if it exists")
    return p.parse_args(argv)


def request_from(args: argparse.Namespace) -> RepositoryRequest:
    """``RepositoryError`` for out-of-range numbers, else the request."""
    for flag, value, low in (("--max-queue-delay-us", args.max_queue_delay_us, 0),
                             ("--instances", args.instances, 1), ("--threads", args.threads, 0),
                             *(("--preferred-batch", b, 1) for b in args.preferred_batch)):
        if value < low:
            raise RepositoryError(f"{flag} must be at least {low}; got {value}")
    kind = args.instance_kind or ("cpu" if args.kind == "python" else "gpu")
    batching = BatchingOptions(preferred=tuple(sorted(set(args.preferred_batch))),
                               max_queue_delay_us=args.max_queue_delay_us,
                               instances=args.instances, instance_kind=INSTANCE_KINDS[kind])
    return RepositoryRequest(kind=args.kind, name=args.name, precision=args.precision,
                             batching=batching, device=args.device, threads=args.threads,
                             overwrite=args.overwrite)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        manifest = load_manifest(args.artifacts)
        request = request_from(args)
        top = manifest.batch_range[2]
        if any(b > top for b in request.batching.preferred):
            raise RepositoryError(f"--preferred-batch {list(request.batching.preferred)} exceeds "
                                  f"the artifact's batch maximum {top}")
        folder = write_repository(manifest, args.repository, request)
    except (ManifestError, ArtifactError, RepositoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{folder}: {args.kind} model '{folder.name}' ({manifest.model}, {args.precision})")
    if args.kind == "python":
        print(f"serve it: python -m runtime.serve --repository {args.repository}")
    print(f"clients: python -m runtime.stream SOURCE --backend triton --server HOST:8001 "
          f"--model {folder.name} --artifacts {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
