"""Generated fixtures for the runtime tests (and bench/runtime_overhead.py), in one place.

- ``build_contract_artifacts(dir)``: a real ONNX graph following the contract (docs/contract.md §1), built with
  onnx.helper, plus a valid manifest. Instance k is "the pixels whose colour channel k is
  bright": masks = avgpool4(sigmoid((x_k - 128) / 10)), score = max mask probability, label k,
  query k, a fixed one-hot embedding per k, boxes from the thresholded mask. So a red, a green
  and a blue object keep their identity by construction.
- ``make_clip``: RGB frames with coloured squares moving on a dark background, and their masks.
- ``write_mp4`` / ``make_faststart`` / ``write_folder``: clips on disk.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from runtime.manifest import sha256_file, write_manifest

CLASSES = ["red", "green", "blue"]
OUTPUTS = ("scores", "labels", "masks", "boxes", "embeddings", "query_index")
COLOURS = {0: (230, 30, 30), 1: (30, 230, 30), 2: (30, 30, 230)}  # RGB per instance/class


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _box_nodes() -> list[onnx.NodeProto]:
    """masks [B,K,T,h,w] -> boxes [B,K,T,4] xyxy model pixels (0 where empty)."""
    nodes = [
        helper.make_node("Greater", ["masks", "half"], ["fg_b"]),
        helper.make_node("Cast", ["fg_b"], ["fg"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["fg", "ax3"], ["colany"], keepdims=0),  # [B,K,T,w]
        helper.make_node("ReduceMax", ["fg", "ax4"], ["rowany"], keepdims=0),  # [B,K,T,h]
    ]
    for axis_name, any_name, pos in (("x", "colany", "xs"), ("y", "rowany", "ys")):
        nodes += [
            helper.make_node("Mul", [any_name, pos], [f"{axis_name}_lo_in"]),
            helper.make_node("Sub", ["one", any_name], [f"{axis_name}_none"]),
            helper.make_node("Mul", [f"{axis_name}_none", f"{axis_name}_size"],
                             [f"{axis_name}_pen"]),
            helper.make_node("Add", [f"{axis_name}_lo_in", f"{axis_name}_pen"],
                             [f"{axis_name}_lo_all"]),
            helper.make_node("ReduceMin", [f"{axis_name}_lo_all", "axlast"],
                             [f"{axis_name}_lo_raw"], keepdims=1),
            helper.make_node("Add", [pos, "one"], [f"{axis_name}_pos1"]),
            helper.make_node("Mul", [any_name, f"{axis_name}_pos1"], [f"{axis_name}_hi_in"]),
            helper.make_node("ReduceMax", [f"{axis_name}_hi_in", "axlast"], [f"{axis_name}_hi"],
                             keepdims=1),
            helper.make_node("Min", [f"{axis_name}_lo_raw", f"{axis_name}_hi"],
                             [f"{axis_name}_lo"]),
        ]
    nodes += [
        helper.make_node("Concat", ["x_lo", "y_lo", "x_hi", "y_hi"], ["box4"], axis=-1),
        helper.make_node("Mul", ["box4", "four"], ["boxes"]),
    ]
    return nodes


def build_contract_graph(height: int, width: int, *, fixed_frames: int | None = None,
                         mask_stride: int = 4) -> onnx.ModelProto:
    """The contract graph (docs/contract.md §1) (K=3, D=4) for input ``[B, T, height, width, 3]``.

    ``mask_stride`` other than 4 breaks the contract on purpose (masks at 1/stride)."""
    s = mask_stride
    h4, w4 = height // s, width // s
    t_dim = fixed_frames if fixed_frames else "T"
    consts = [
        _const("c128", np.array(128, np.float32)), _const("c01", np.array(0.1, np.float32)),
        _const("zero", np.array(0, np.float32)), _const("one", np.array(1, np.float32)),
        _const("half", np.array(0.5, np.float32)), _const("four", np.array(s, np.float32)),
        _const("ax234", np.array([2, 3, 4], np.int64)), _const("ax3", np.array([3], np.int64)),
        _const("ax4", np.array([4], np.int64)), _const("axlast", np.array([-1], np.int64)),
        _const("ax2", np.array([2], np.int64)),
        _const("klabels", np.array([0, 1, 2], np.float32)),
        _const("kembed", np.eye(3, 4, dtype=np.float32)),
        _const("xs", np.arange(w4, dtype=np.float32)), _const("ys", np.arange(h4, dtype=np.float32)),
        _const("x_size", np.array(w4, np.float32)), _const("y_size", np.array(h4, np.float32)),
    ]
    nodes = consts + [
        helper.make_node("Cast", ["frames"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["xf"], ["xt"], perm=[0, 4, 1, 2, 3]),  # [B,3,T,H,W]
        helper.make_node("Sub", ["xt", "c128"], ["xc"]),
        helper.make_node("Mul", ["xc", "c01"], ["xs_"]),
        helper.make_node("Sigmoid", ["xs_"], ["prob"]),
        helper.make_node("AveragePool", ["prob"], ["masks"], kernel_shape=[1, s, s],
                         strides=[1, s, s]),
        helper.make_node("ReduceMax", ["masks", "ax234"], ["scores"], keepdims=0),  # [B,K]
        helper.make_node("Mul", ["scores", "zero"], ["zeros_bk"]),
        helper.make_node("Add", ["zeros_bk", "klabels"], ["labels_f"]),
        helper.make_node("Cast", ["labels_f"], ["labels"], to=TensorProto.INT32),
        helper.make_node("Cast", ["labels_f"], ["query_index"], to=TensorProto.INT32),
        helper.make_node("Unsqueeze", ["zeros_bk", "ax2"], ["zeros_bk1"]),
        helper.make_node("Add", ["zeros_bk1", "kembed"], ["embeddings"]),
    ] + _box_nodes()
    outputs = [
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", 3]),
        helper.make_tensor_value_info("labels", TensorProto.INT32, ["B", 3]),
        helper.make_tensor_value_info("masks", TensorProto.FLOAT, ["B", 3, t_dim, h4, w4]),
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["B", 3, t_dim, 4]),
        helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["B", 3, 4]),
        helper.make_tensor_value_info("query_index", TensorProto.INT32, ["B", 3]),
    ]
    frames = helper.make_tensor_value_info("frames", TensorProto.UINT8,
                                           ["B", t_dim, height, width, 3])
    graph = helper.make_graph(nodes, "contract", [frames], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def build_contract_artifacts(directory: Path, *, height: int = 64, width: int = 96,
                             fixed_frames: int | None = None, window: tuple[int, int] = (5, 3),
                             batch_max: int = 2) -> Path:
    """Write model.onnx + manifest.json for the contract graph into ``directory`` (engine
    batches of 1..``batch_max`` windows)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(build_contract_graph(height, width, fixed_frames=fixed_frames),
              directory / "model.onnx")
    frames = ({"min": fixed_frames, "opt": fixed_frames, "max": fixed_frames}
              if fixed_frames else {"min": 1, "opt": 5, "max": 12})
    write_manifest(directory, {
        "format": "visdeploy.manifest/1", "model": "contract", "preset": "test",
        "classes": CLASSES,
        "input": {"height": height, "width": width, "frames": frames,
                  "batch": {"min": 1, "opt": 1, "max": batch_max},
                  "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]},
        "outputs": {"K": 3, "embedding_dim": 4},
        "window": {"length": window[0], "stride": window[1]},
        "artifacts": [{"file": "model.onnx", "kind": "onnx", "precision": "fp32", "opset": 18,
                       "sha256": sha256_file(directory / "model.onnx")}],
        "source": {"checkpoint": "none", "torch": "none", "exported": "test"},
    })
    return directory


def build_two_stage_contract_artifacts(directory: Path, *, height: int = 64, width: int = 96,
                                       clip_content_hw: bool = False) -> Path:
    """The contract artifacts plus a two-stage split of the same graph: ``frame_stage.onnx``
    (frames uint8 -> ``feat`` float32 [B, T, H, W, 3]) and ``clip_stage.onnx`` (``feat`` [and an
    unused ``content_hw`` int32 [B, 2]] -> the contract outputs)."""
    directory = build_contract_artifacts(directory, height=height, width=width)
    frames = helper.make_tensor_value_info("frames", TensorProto.UINT8, ["B", "T", height, width, 3])
    feat = helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["B", "T", height, width, 3])
    frame_stage = helper.make_model(
        helper.make_graph([helper.make_node("Cast", ["frames"], ["feat"], to=TensorProto.FLOAT)],
                          "frame_stage", [frames], [feat]),
        opset_imports=[helper.make_opsetid("", 18)])
    frame_stage.ir_version = 9
    clip_stage = build_contract_graph(height, width)
    cast = next(n for n in clip_stage.graph.node if n.output[0] == "xf")
    cast.CopyFrom(helper.make_node("Identity", ["feat"], ["xf"]))
    clip_stage.graph.input[0].CopyFrom(feat)
    clip_inputs = ["feat"]
    if clip_content_hw:
        clip_stage.graph.input.append(
            helper.make_tensor_value_info("content_hw", TensorProto.INT32, ["B", 2]))
        clip_inputs.append("content_hw")
    data = json_manifest(directory)
    for stage, model, inputs, outputs in (
            ("frame", frame_stage, ["frames"], ["feat"]),
            ("clip", clip_stage, clip_inputs, list(OUTPUTS))):
        onnx.checker.check_model(model)
        onnx.save(model, directory / f"{stage}_stage.onnx")
        data["artifacts"].append({
            "file": f"{stage}_stage.onnx", "kind": "onnx", "precision": "fp32", "opset": 18,
            "sha256": sha256_file(directory / f"{stage}_stage.onnx"), "stage": stage,
            "inputs": inputs, "outputs": outputs})
    write_manifest(directory, data)
    return directory


def json_manifest(directory: Path) -> dict:
    return json.loads((Path(directory) / "manifest.json").read_text())


def square_at(t: int, start: tuple[float, float], velocity: tuple[float, float]
              ) -> tuple[int, int]:
    """Top-left (y, x) of a square at frame t."""
    return int(round(start[0] + velocity[0] * t)), int(round(start[1] + velocity[1] * t))


def make_clip(num_frames: int, size: tuple[int, int] = (90, 160), *, side: int = 20,
              objects: dict[int, tuple] | None = None, visible=None):
    """RGB clip ``uint8 [n, H, W, 3]`` and visible masks ``bool [3, n, H, W]`` of moving squares
    (drawn in key order: later objects occlude earlier ones).

    ``objects``: instance k -> (start (y, x), velocity (vy, vx)); ``visible(k, t)`` may hide
    an object in some frames.
    """
    objects = objects or {0: ((10, 5), (0.0, 2.0)), 1: ((50, 120), (0.0, -2.0))}
    h, w = size
    frames = np.full((num_frames, h, w, 3), 20, np.uint8)
    masks = np.zeros((3, num_frames, h, w), bool)
    for t in range(num_frames):
        for k, (start, velocity) in objects.items():
            if visible is not None and not visible(k, t):
                continue
            y, x = square_at(t, start, velocity)
            y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + side, h), min(x + side, w)
            if y1 > y0 and x1 > x0:
                frames[t, y0:y1, x0:x1] = COLOURS[k]
                masks[:, t, y0:y1, x0:x1] = False  # later objects occlude earlier ones
                masks[k, t, y0:y1, x0:x1] = True
    return frames, masks


def write_mp4(path: Path, frames_rgb: np.ndarray, fps: float = 15.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (frames_rgb.shape[2], frames_rgb.shape[1]))
    assert writer.isOpened(), "cv2 mp4v writer failed"
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_folder(folder: Path, frames_rgb: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames_rgb):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def _boxes(buf: bytes, start: int, end: int):
    while start < end:
        size, kind = struct.unpack(">I4s", buf[start:start + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", buf[start + 8:start + 16])[0], 16
        yield kind.decode("latin1"), start, size or end - start, header
        start += size or end - start


def make_faststart(src: Path, dst: Path) -> Path:
    """Move the MP4 index (moov) before the media data, fixing chunk offsets (stco/co64).

    OpenCV writes moov last, so a cut-off file has no index at all; with moov first a cut-off
    file opens and decodes up to the cut, which is what a truncated recording usually is.
    """
    data = src.read_bytes()
    top = {kind: (o, s) for kind, o, s, _ in _boxes(data, 0, len(data))}
    moov_at, moov_size = top["moov"]
    moov = bytearray(data[moov_at:moov_at + moov_size])

    def shift(start: int, end: int) -> None:
        for kind, o, s, h in _boxes(moov, start, end):
            if kind in ("moov", "trak", "mdia", "minf", "stbl"):
                shift(o + h, o + s)
            elif kind in ("stco", "co64"):
                width = 4 if kind == "stco" else 8
                fmt = ">I" if kind == "stco" else ">Q"
                count = struct.unpack(">I", moov[o + h + 4:o + h + 8])[0]
                for i in range(count):
                    p = o + h + 8 + width * i
                    value = struct.unpack(fmt, moov[p:p + width])[0]
                    moov[p:p + width] = struct.pack(fmt, value + moov_size)

    shift(0, len(moov))
    ftyp_at, ftyp_size = top["ftyp"]
    head = data[:ftyp_at + ftyp_size]
    dst.write_bytes(head + bytes(moov) + data[ftyp_at + ftyp_size:moov_at])
    return dst


def make_vfr(src: Path, dst: Path, runs: list[tuple[int, float]]) -> Path:
    """Rewrite an OpenCV-written MP4 (index after the media data) into a variable-frame-rate
    one: ``runs`` lists (frames, seconds per frame) in order and replaces the time-to-sample
    table (stts). Keep the total duration equal to the source's so mdhd/tkhd still agree."""
    data = bytearray(src.read_bytes())

    def chain_to(kind_wanted: str, start: int, end: int, chain: list):
        for kind, o, s, h in _boxes(data, start, end):
            if kind == kind_wanted:
                return chain + [(o, s, h)]
            if kind in ("moov", "trak", "mdia", "minf", "stbl"):
                found = chain_to(kind_wanted, o + h, o + s, chain + [(o, s, h)])
                if found:
                    return found
        return None

    mdhd_at, _, mdhd_header = chain_to("mdhd", 0, len(data), [])[-1]
    version = data[mdhd_at + mdhd_header]
    timescale = struct.unpack(">I", data[mdhd_at + mdhd_header + (20 if version else 12):][:4])[0]
    chain = chain_to("stts", 0, len(data), [])
    at, size, _ = chain[-1]
    entries = [(n, round(seconds * timescale)) for n, seconds in runs]
    body = struct.pack(">II", 0, len(entries)) + b"".join(struct.pack(">II", *e) for e in entries)
    stts = struct.pack(">I4s", 8 + len(body), b"stts") + body
    for parent_at, parent_size, _ in chain[:-1]:  # moov comes after mdat: offsets do not move
        struct.pack_into(">I", data, parent_at, parent_size + len(stts) - size)
    data[at:at + size] = stts
    dst.write_bytes(bytes(data))
    return dst


# -- scripted instance streams for tracker tests and the tracker benchmark ---------------------
class ScriptedObject:
    """An object for scripted tracker streams: ``position(t) -> (cy, cx) or None`` (hidden)."""

    def __init__(self, object_id: int, label: int, embedding: np.ndarray, position,
                 radius: float = 4.0) -> None:
        self.object_id, self.label, self.position, self.radius = object_id, label, position, radius
        self.embedding = embedding / np.linalg.norm(embedding)


def scripted_window(objects: list[ScriptedObject], frames: list[int], *, mask_hw=(24, 32),
                    num_classes: int = 3, rng: np.random.Generator, duplicates: int = 0,
                    embedding_noise: float = 0.05, score: float = 0.9):
    """One window's ``WindowInstances`` for the visible objects, rows shuffled like a model's
    query order. Returns (instances, truth) with truth[i] = object id of row i."""
    from runtime.types import WindowInstances

    h, w = mask_hw
    yy, xx = np.mgrid[0:h, 0:w]
    rows, truth = [], []
    for obj in objects:
        centres = [obj.position(t) for t in frames]
        if all(c is None for c in centres):
            continue
        for copy in range(1 + duplicates):
            masks = np.full((len(frames), h, w), 0.02, np.float32)
            boxes = np.zeros((len(frames), 4), np.float32)
            jitter = 0.3 * copy  # duplicates: near-identical masks, lower scores
            for i, centre in enumerate(centres):
                if centre is None:
                    continue
                cy, cx = centre[0] + jitter, centre[1]
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= obj.radius ** 2
                masks[i][inside] = 0.95
                boxes[i] = [4 * (cx - obj.radius), 4 * (cy - obj.radius),
                            4 * (cx + obj.radius), 4 * (cy + obj.radius)]
            emb = obj.embedding + rng.normal(0, embedding_noise, obj.embedding.shape)
            class_scores = np.zeros(num_classes, np.float32)
            row_score = score - 0.1 * copy
            class_scores[obj.label] = row_score
            rows.append((row_score, obj.label, class_scores, masks, boxes,
                         (emb / np.linalg.norm(emb)).astype(np.float32)))
            truth.append(obj.object_id)
    order = rng.permutation(len(rows))
    rows, truth = [rows[i] for i in order], [truth[i] for i in order]
    dim = objects[0].embedding.shape[0] if objects else 8
    if not rows:
        return WindowInstances.empty(num_frames=len(frames), mask_hw=mask_hw,
                                     num_classes=num_classes, embedding_dim=dim), []
    return WindowInstances(
        scores=np.array([r[0] for r in rows], np.float32),
        labels=np.array([r[1] for r in rows], np.int64),
        class_scores=np.stack([r[2] for r in rows]), masks=np.stack([r[3] for r in rows]),
        boxes=np.stack([r[4] for r in rows]), embeddings=np.stack([r[5] for r in rows]),
        query_index=np.arange(len(rows), dtype=np.int64),
    ), truth


def run_scripted(tracker, objects, *, num_frames: int, length: int = 5, stride: int = 3,
                 seed: int = 0, duplicates: int = 0, mask_hw=(24, 32), empty_windows=()):
    """Feed windows of ``objects`` through ``tracker``; return {object id: [track ids]} in
    window order (one entry per window the object appears in)."""
    rng = np.random.default_rng(seed)
    assigned: dict[int, list[int]] = {}
    for k, start in enumerate(range(0, num_frames - length + 1, stride)):
        frames = list(range(start, start + length))
        visible = [] if k in empty_windows else objects
        instances, truth = scripted_window(visible, frames, rng=rng, duplicates=duplicates,
                                           mask_hw=mask_hw)
        ids = tracker.update(instances, frames)
        for object_id in sorted(set(truth)):
            got = {int(ids[i]) for i, o in enumerate(truth) if o == object_id} - {-1}
            assert len(got) == 1, f"object {object_id} got tracks {got} in window {k}"
            assigned.setdefault(object_id, []).append(got.pop())
    return assigned


def id_switches(assigned: dict[int, list[int]]) -> int:
    """Changes of track id along each object's sequence, plus ids shared between objects."""
    switches = sum(sum(a != b for a, b in zip(seq, seq[1:], strict=False)) for seq in assigned.values())
    owners: dict[int, set[int]] = {}
    for object_id, seq in assigned.items():
        for track_id in seq:
            owners.setdefault(track_id, set()).add(object_id)
    return switches + sum(len(o) - 1 for o in owners.values())
