"""The SOP expressions' functions: the Go-template engine's (``smallyi.gotmpl.functions``), which GitOps shares."""

from smallyi.gotmpl.functions import FUNCTIONS, MAX_VALUE, Raw, call, to_text, truthy

__all__ = ["FUNCTIONS", "MAX_VALUE", "Raw", "call", "to_text", "truthy"]
