"""The SOP expression language on its own: parsing, evaluation, functions, errors and the sandbox."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from smallyi.gotmpl.evaluator import MAX_STEPS
from smallyi.gotmpl.functions import MAX_VALUE
from smallyi.sop.expr import ExprError, compile_template, field_paths

DF = "/dev/sda1        50G   48G  2.0G  95% /"


def ev(text: str, ctx: dict[str, Any] | None = None, *, bare: bool = False) -> Any:
    return compile_template(text, bare=bare).evaluate(ctx or {})


def test_the_original_condition_reads_the_previous_output() -> None:
    """`{{ .output | contains '95%' }}` is true on a df line at 95% and false at 24%."""
    tpl = compile_template("{{ .output | contains '95%' }}")
    assert tpl.test({"output": DF}) is True
    assert tpl.test({"output": DF.replace("95%", "24%")}) is False


def test_pipe_passes_the_value_as_last_argument() -> None:
    """`x | f a` is `f a x`, as in Go templates and sprig."""
    assert ev("{{ 'b' | hasPrefix 'a' }}") is False
    assert ev("{{ 'abc' | hasPrefix 'a' }}") is True
    assert ev("{{ .s | replace 'a' 'b' }}", {"s": "aXa"}) == "bXb"
    assert ev("{{ .s | split ',' | join '+' }}", {"s": "a,b,c"}) == "a+b+c"


def test_single_and_double_quotes_and_escapes() -> None:
    """Strings take single quotes (the original's), double quotes with escapes, and backquotes raw."""
    assert ev("{{ 'it\\'s' }}") == "it's"
    assert ev('{{ "a\\tb" }}') == "a\tb"
    assert ev("{{ `a\\n` }}") == "a\\n"


def test_fields_walk_nested_maps_and_missing_is_nil() -> None:
    """`.steps.x.output` walks maps; a missing key is nil (renders empty, tests false)."""
    ctx = {"steps": {"x": {"output": "hi"}}}
    assert ev("{{ .steps.x.output }}", ctx) == "hi"
    assert ev("{{ .steps.y.output }}", ctx) is None
    assert compile_template("a{{ .nope }}b").render(ctx) == "ab"


def test_field_of_a_non_map_is_an_error_with_position() -> None:
    """Reading a field of a string names the field and where it is."""
    with pytest.raises(ExprError) as e:
        ev("{{ .output.size }}", {"output": "text"})
    assert "size" in e.value.message and e.value.pos == 3


def test_index_reads_hosts_with_dashes() -> None:
    """Host names with '-' are read with index, and `(…).field` reads a field of the result."""
    ctx = {"hosts": {"host-001": {"output": " 95% "}}}
    assert ev('{{ (index .hosts "host-001").output | trim }}', ctx) == "95%"
    assert ev('{{ index .hosts "host-999" }}', ctx) is None
    assert ev("{{ .items | at 1 }}", {"items": [1, 2, 3]}) == 2
    assert ev("{{ .items | last }}", {"items": [1, 2, 3]}) == 3


def test_comparisons_and_logic() -> None:
    """eq takes several values; lt/gt compare numbers or strings; and/or return a deciding value."""
    assert ev("{{ eq .code 0 1 }}", {"code": 1}) is True
    assert ev("{{ eq .flag 1 }}", {"flag": True}) is False  # true is not 1
    assert ev("{{ lt 2 10 }}") is True and ev("{{ gt 'b' 'a' }}") is True
    assert ev("{{ and 1 0 2 }}") == 0 and ev("{{ or 0 '' 'x' }}") == "x"
    assert ev("{{ not .x }}", {"x": []}) is True
    with pytest.raises(ExprError, match="cannot compare"):
        ev("{{ lt 1 'a' }}")


def test_numbers_from_output() -> None:
    """A percentage read from df output becomes a number to compare."""
    ctx = {"output": DF}
    assert ev("{{ .output | fields | at 4 | trimSuffix '%' | int | ge 90 }}", ctx) is False
    assert ev("{{ ge (.output | fields | at 4 | trimSuffix '%' | int) 90 }}", ctx) is True
    assert ev("{{ add 1 2 | mul 3 }}") == 9 and ev("{{ div 7 2 }}") == 3
    with pytest.raises(ExprError, match="division by zero"):
        ev("{{ div 1 0 }}")


def test_grep_lines_and_len() -> None:
    """grep keeps lines containing a text; lines and len count them."""
    ctx = {"output": "a 95%\nb 10%\nc 95%"}
    assert ev("{{ .output | grep '95%' | lines | len }}", ctx) == 2


def test_bare_expressions_without_braces() -> None:
    """Conditions may be written without braces: `eq .status 'success'`."""
    assert compile_template("eq .status 'success'", bare=True).test({"status": "success"})


def test_text_conditions() -> None:
    """Text around actions renders; as a condition, empty, false, 0 and no are false."""
    assert compile_template("{{ .x }}").test({"x": "false"}) is False  # --var flag=false is false
    assert compile_template(" {{ .x }} ").test({"x": "no"}) is False
    assert compile_template("x={{ .x }}").test({"x": 0}) is True


def test_render_quotes_values_for_the_shell() -> None:
    """With shell escaping every value is one word, whatever it holds; raw opts out."""
    ctx = {"vars": {"p": "a b; rm -rf /", "flags": "-l -a"}}
    out = compile_template("ls {{ .vars.p }}").render(ctx, escape=shlex.quote)
    assert shlex.split(out) == ["ls", "a b; rm -rf /"]
    out = compile_template("ls {{ .vars.flags | raw }}").render(ctx, escape=shlex.quote)
    assert out == "ls -l -a"
    out = compile_template("ls {{ .vars.p | quote }}").render(ctx, escape=shlex.quote)
    assert shlex.split(out) == ["ls", "a b; rm -rf /"]  # quote is not quoted twice


def test_whitespace_trimming_markers() -> None:
    """`{{-` and `-}}` trim the spaces next to them, as in Go."""
    assert compile_template("a  {{- .x -}}  b").render({"x": 1}) == "a1b"
    assert compile_template("{{ -1 }}").render({}) == "-1"


def test_values_print_like_go() -> None:
    """nil prints nothing, booleans true/false, whole floats without .0, lists and maps as JSON."""
    r = compile_template("{{ .n }}|{{ .b }}|{{ .f }}|{{ .l }}").render({"n": None, "b": True, "f": 2.0, "l": [1]})
    assert r == "|true|2|[1]"


@pytest.mark.parametrize("text, msg", [
    ("{{ .a", "not closed"),
    ("{{ }}", "empty action"),
    ("{{ .a | 3 }}", "function name"),
    ("{{ .a .b }}", "only a function takes arguments"),
    ("{{ nosuch .a }}", "unknown function"),
    ("{{ 'x }}", "not closed"),
    ("{{ contains 'a' }}", "takes 2"),
    ("{{ (.a }}", r"expected '\)'"),
    ("{{ .a # }}", "unexpected character"),
    ("{{ 'a\\q' }}", "unknown escape"),
])
def test_errors_say_what_is_wrong(text: str, msg: str) -> None:
    """Each mistake is an ExprError whose message says what is wrong."""
    with pytest.raises(ExprError, match=msg):
        ev(text, {"a": "x", "b": "y"})


def test_error_positions_point_into_the_template() -> None:
    """The position of an error is its offset in the whole template."""
    with pytest.raises(ExprError) as e:
        compile_template("text {{ .a | 3 }}")
    assert e.value.pos == len("text {{ .a | ")


def test_sandbox_reaches_only_plain_data() -> None:
    """Dunder names are plain map keys: nothing reaches Python objects or attributes."""
    assert ev("{{ .__class__ }}", {"x": 1}) is None
    with pytest.raises(ExprError):
        ev("{{ .x.__class__ }}", {"x": "s"})
    assert ev("{{ index . '__class__' }}", {}) is None


def test_work_and_size_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    """An expression cannot nest without end, do unbounded work, or build unbounded text."""
    with pytest.raises(ExprError, match="nested deeper"):
        compile_template("{{ " + "(" * 40 + "1" + ")" * 40 + " }}")
    assert MAX_STEPS >= 10_000
    monkeypatch.setattr("smallyi.gotmpl.evaluator.MAX_STEPS", 50)
    with pytest.raises(ExprError, match="steps of work"):
        ev("{{ " + " ".join(["print"] + ["(print 1)"] * 30) + " }}")
    with pytest.raises(ExprError, match="longer than|at most"):
        ev("{{ .s | replace 'a' .r }}", {"s": "a" * 1000, "r": "b" * (MAX_VALUE // 500)})
    with pytest.raises(ExprError, match="characters"):
        compile_template("x" * (65 * 1024))


def test_field_paths_for_checking_names() -> None:
    """The fields a template reads are listed, for strict validation."""
    assert field_paths("{{ .steps.a.output }} {{ index .vars.m 'k' | default .env.X }}") == [
        ("steps", "a", "output"), ("vars", "m"), ("env", "X")]


def test_json_helpers() -> None:
    """toJson and fromJson convert between text and data."""
    assert ev("{{ .m | toJson }}", {"m": {"b": 1, "a": [2]}}) == '{"a": [2], "b": 1}'
    assert ev("{{ (fromJson .s).k }}", {"s": '{"k": 5}'}) == 5
    with pytest.raises(ExprError, match="not JSON"):
        ev("{{ fromJson 'nope' }}")
