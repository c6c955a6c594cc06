"""The SOP expressions' parser: the Go-template engine's (``smallyi.gotmpl.parser``), which GitOps shares."""

from smallyi.gotmpl.parser import (
    Call,
    ExprError,
    Field,
    Literal,
    Node,
    Pipeline,
    Sub,
    Var,
    parse_action,
    parse_chunks,
)

__all__ = ["Call", "ExprError", "Field", "Literal", "Node", "Pipeline", "Sub", "Var", "parse_action", "parse_chunks"]
