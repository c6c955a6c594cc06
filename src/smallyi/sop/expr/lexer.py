"""The SOP expressions' lexer: the Go-template engine's (``smallyi.gotmpl.lexer``), which GitOps shares."""

from smallyi.gotmpl.lexer import MAX_TEMPLATE, Chunk, ExprError, Token, split_template, tokenize

__all__ = ["MAX_TEMPLATE", "Chunk", "ExprError", "Token", "split_template", "tokenize"]
