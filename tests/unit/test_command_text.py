"""Commands that cannot reach a host's shell intact are refused, naming the field and the offset."""

import pytest

from smallyi.errors import InputError
from smallyi.policy import command_text


@pytest.mark.parametrize("text", ["uptime", "echo 'a\tb'\nls\r\n", "printf '\\x00'", "echo 你好 \x1b[0m", ""])
def test_text_a_shell_can_take_passes(text: str) -> None:
    """Tabs, newlines, escapes, the text "\\x00", control and non-ASCII characters all reach a shell as written."""
    assert command_text.problem(text) is None
    assert command_text.check(text, field="cmd") == text


def test_a_nul_byte_is_refused_at_its_offset() -> None:
    """A NUL would cut the command at a C string's end (local shell) or drop the SSH connection (OpenSSH)."""
    with pytest.raises(InputError) as err:
        command_text.check("rm -rf /\0tmp/x", field="cmd")
    assert err.value.field == "cmd"
    assert err.value.message.startswith("cmd: the command contains a NUL byte (\\x00) at offset 8;")


def test_text_that_is_not_utf8_is_refused_at_its_offset() -> None:
    """Bytes that were not UTF-8 (read from argv as lone surrogates) cannot be encoded, so they are refused."""
    bad = b"echo \xff".decode("utf-8", "surrogateescape")
    why = command_text.problem(bad, "the script")
    assert why is not None and why.startswith("the script is not UTF-8 text: offset 5 holds a byte")
