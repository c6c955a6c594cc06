"""The SOP expressions' evaluator: the Go-template engine's (``smallyi.gotmpl.evaluator``), which GitOps shares."""

from smallyi.gotmpl.evaluator import MAX_STEPS, Escape, Evaluator, Raw, to_text, truthy

__all__ = ["MAX_STEPS", "Escape", "Evaluator", "Raw", "to_text", "truthy"]
