"""Pieces of the Triton serving path that need neither tritonclient nor a server: how the
Python-backend model groups gathered requests, the client's --server parsing and option
checks, and the refusals of python -m runtime.serve before anything starts. The real server
runs in tests/runtime/test_rt_triton.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from runtime.backends.triton import parse_servers, status_name
from runtime.errors import ConfigError
from runtime.serve import main as serve_main
from runtime.serving.client_options import check_triton_options
from runtime.serving.process import check_repository, free_tcp_ports
from runtime.serving.python_model import group_by_frames, model_parameters


def clips(*shapes: tuple[int, int]) -> list[np.ndarray]:
    return [np.zeros((b, t, 4, 4, 3), np.uint8) for b, t in shapes]


def test_requests_group_by_t_without_exceeding_the_batch_or_splitting_a_request():
    # (b, T) per request, in arrival order
    requests = clips((1, 5), (2, 5), (1, 8), (1, 5), (1, 5), (2, 8))
    assert group_by_frames(requests, max_batch=4) == [[0, 1, 3], [2, 5], [4]]
    assert group_by_frames(requests, max_batch=1) == [[0], [1], [2], [3], [4], [5]]
    assert group_by_frames([], max_batch=4) == []


def test_model_parameters_are_plain_strings():
    config = {"parameters": {"precision": {"string_value": "fp16"}, "threads": {}}}
    assert model_parameters(config) == {"precision": "fp16", "threads": ""}


def test_server_lists():
    assert parse_servers("a:8001, [::1]:9001 ,") == ["a:8001", "[::1]:9001"]
    for bad in ("", "host", ":8001", "h:0", "h:70000", "h:port"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_servers(bad)


def test_status_names():
    class Error(Exception):
        def status(self):
            return "StatusCode.UNAVAILABLE"

    assert status_name(Error()) == "UNAVAILABLE" and status_name(ValueError()) == ""


def _args(**given):
    values = {"backend": "triton", "server": None, "model": None, "server_retries": None,
              "server_timeout": None}
    return SimpleNamespace(**(values | given))


def test_triton_options_are_checked_before_anything_opens():
    check_triton_options(_args(server="h:1,h:2", server_retries=0, server_timeout=0.5))
    with pytest.raises(ConfigError, match="only apply to --backend triton"):
        check_triton_options(_args(backend="onnxruntime", model="tevit"))
    with pytest.raises(ConfigError, match="--server-retries"):
        check_triton_options(_args(server_retries=-1))
    with pytest.raises(ConfigError, match="--server-timeout"):
        check_triton_options(_args(server_timeout=0))


def test_serve_refuses_before_starting(tmp_path, capsys):
    assert serve_main(["--repository", str(tmp_path / "none")]) == 2
    assert "python -m export.triton" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no model"):
        check_repository(tmp_path / "empty")
    (tmp_path / "repo" / "m").mkdir(parents=True)
    (tmp_path / "repo" / "m" / "config.pbtxt").write_text('name: "m"\n')
    assert check_repository(tmp_path / "repo") == ["m"]
    for ports in (["--grpc-port", "9000", "--http-port", "9000"], ["--grpc-port", "0"],
                  ["--metrics-port", "70000"]):
        assert serve_main(["--repository", str(tmp_path / "repo"), *ports]) == 2
        assert "port" in capsys.readouterr().err
    env = ["--repository", str(tmp_path / "repo"), "--server-env", str(tmp_path / "no-env")]
    assert serve_main(env) == 2
    assert "make serve-env" in capsys.readouterr().err


def test_free_ports_are_distinct():
    ports = free_tcp_ports(3)
    assert len(set(ports)) == 3 and all(1024 <= p <= 65535 for p in ports)
