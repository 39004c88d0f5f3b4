"""Serving on Triton Inference Server (docs/serving.md): the server process
(``runtime.serving.process``, ``runtime.serving.server``) and the Python-backend model it runs
(``runtime.serving.python_model``). The client is ``runtime.backends.triton``."""

# config.pbtxt parameter with the sha256 of the manifest a model was written from: the client
# checks that its --artifacts manifest is the same (export/triton/config.py writes it)
MANIFEST_SHA_PARAMETER = "visdeploy_manifest_sha256"
