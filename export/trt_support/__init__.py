"""CPU-side TensorRT checks: the parser's operator-support tables, an ONNX lint against them,
and the Python binding name lists of TensorRT 10.x and 11.x (``bindings_trt*.txt``).

``lint_onnx(path, load_support_table(10))`` needs only ``onnx``; nothing here imports TensorRT.
"""

from export.trt_support.bindings import (
    BINDING_LISTS,
    MEMBER_TABLES,
    BindingMembers,
    BindingNames,
    load_binding_members,
    load_binding_names,
)
from export.trt_support.lint import LintIssue, LintReport, lint_model, lint_onnx
from export.trt_support.table import (
    DEFAULT_TARGETS,
    SupportTable,
    SupportTableError,
    load_support_table,
)

__all__ = [
    "BINDING_LISTS", "DEFAULT_TARGETS", "MEMBER_TABLES", "BindingMembers", "BindingNames",
    "LintIssue", "LintReport", "SupportTable", "SupportTableError", "lint_model", "lint_onnx",
    "load_binding_members", "load_binding_names", "load_support_table",
]
