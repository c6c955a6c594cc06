"""The console's Simplified Chinese covers every string its pages pass to t() (a missing one shows English)."""

import re
from pathlib import Path

import pytest

JS = Path(__file__).parents[2] / "src" / "smallyi" / "web" / "static" / "js"
CALL = re.compile(r'\bt\("((?:[^"\\]|\\.)*)"')


@pytest.mark.parametrize("module", sorted(p.relative_to(JS).as_posix() for p in [*JS.glob("pages/**/*.js"), JS / "main.js", JS / "events.js"]))
def test_every_string_has_a_chinese_translation(module: str) -> None:
    """Each literal t("...") key of the module is a key of i18n-zh.js."""
    zh = (JS / "i18n-zh.js").read_text(encoding="utf-8")
    keys = set(CALL.findall((JS / module).read_text(encoding="utf-8")))
    assert sorted(k for k in keys if f'"{k}":' not in zh) == []
