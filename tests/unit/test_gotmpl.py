"""Go templates on their own (smallyi.gotmpl): data files of template + data in, text or error out
(tests/cases/gotmpl/*.yaml), and how a rendering streams, stops and says where it is."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from smallyi.gotmpl import Execution, ExprError, TemplateSet
from smallyi.gotmpl.execute import MAX_DEPTH

CASES = Path(__file__).resolve().parents[1] / "cases" / "gotmpl"


def load() -> list[Any]:
    out = []
    for path in sorted(CASES.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()):
            out.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return out


def render(template: str, data: Any = None, *, files: dict[str, str] | None = None, strict: bool = True) -> str:
    tset = TemplateSet()
    for name, source in (files or {}).items():
        tset.add(name, source)
    tset.add("t.tmpl", template)
    return "".join(Execution(tset, strict=strict).stream("t.tmpl", data if data is not None else {}))


@pytest.mark.parametrize("case", load())
def test_case(case: dict[str, Any]) -> None:
    """Each case renders exactly its text, or fails with its message at its line."""
    args = (case["template"], case.get("data"))
    kwargs = {"files": case.get("files"), "strict": case.get("strict", True)}
    if "error" not in case:
        assert render(*args, **kwargs) == case["expect"]
        return
    tset = TemplateSet()
    ex = Execution(tset, strict=kwargs["strict"])
    with pytest.raises(ExprError) as info:
        for name, source in (case.get("files") or {}).items():
            tset.add(name, source)
        tset.add("t.tmpl", case["template"])
        "".join(ex.stream("t.tmpl", case.get("data") or {}))
    assert case["error"] in info.value.message
    if "line" in case:
        assert case["template"].count("\n", 0, info.value.pos) + 1 == case["line"]


def test_where_names_the_file_and_line_being_rendered() -> None:
    """An error in a template called from another is placed in the called one's file, at its line."""
    tset = TemplateSet()
    tset.add("footer.tmpl", "# footer\n# {{ .commit.shrt }}\n")
    tset.add("app.tmpl", 'a\nb\n{{ template "footer.tmpl" . }}')
    ex = Execution(tset)
    with pytest.raises(ExprError) as info:
        "".join(ex.stream("app.tmpl", {"commit": {"short": "abc"}}))
    assert ex.where(info.value) == ("footer.tmpl", 2)


def test_output_streams_and_stops_when_the_reader_stops() -> None:
    """Text comes piece by piece: a reader that stops after 1,000 pieces of a 10^10-piece loop has used
    almost no memory or time, and ``range`` over a huge number builds no list first."""
    tset = TemplateSet()
    tset.add("t.tmpl", "{{ range 100000 }}{{ range 100000 }}x{{ end }}{{ end }}")
    tracemalloc.start()
    try:
        stream = Execution(tset).stream("t.tmpl", {})
        got = [next(stream) for _ in range(1000)]
        stream.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == ["x"] * 1000
    assert peak < 512 * 1024, peak


def test_the_same_set_renders_many_hosts_without_leaking_state() -> None:
    """One parsed set renders host after host: variables, dot and position start afresh each time."""
    tset = TemplateSet()
    tset.add("t.tmpl", "{{ $n := 0 }}{{ range .xs }}{{ $n = add $n . }}{{ end }}{{ .name }}={{ $n }}")
    outs = ["".join(Execution(tset).stream("t.tmpl", {"name": f"h{i}", "xs": list(range(i))})) for i in range(4)]
    assert outs == ["h0=0", "h1=0", "h2=1", "h3=3"]


def test_deep_recursion_is_an_error_not_a_crash() -> None:
    """A template that calls itself stops at MAX_DEPTH with an error, well before Python's own limit."""
    tset = TemplateSet()
    tset.add("t.tmpl", '{{ define "r" }}{{ if . }}{{ template "r" (sub . 1) }}{{ end }}{{ end }}{{ template "r" .n }}')
    assert "".join(Execution(tset).stream("t.tmpl", {"n": MAX_DEPTH // 3})) == ""
    with pytest.raises(ExprError, match="nest more than"):
        "".join(Execution(tset).stream("t.tmpl", {"n": 10 * MAX_DEPTH}))


def test_a_name_defined_twice_is_refused() -> None:
    """Two files defining the same template name: the second is refused, naming the first."""
    tset = TemplateSet()
    tset.add("a.tmpl", '{{ define "x" }}a{{ end }}')
    with pytest.raises(ExprError, match="template 'x' is already defined in a.tmpl, line 1"):
        tset.add("b.tmpl", 'b\n{{ define "x" }}b{{ end }}')


@pytest.mark.parametrize("attempt", [
    "{{ .__class__ }}", "{{ .host.__init__.__globals__ }}", "{{ call .f }}", "{{ .f.__call__ }}",
    '{{ template "/etc/passwd" }}', "{{ $.__dict__ }}", "{{ index . \"__class__\" | print }}x",
])
def test_nothing_but_the_data_is_reachable(attempt: str) -> None:
    """Fields are map keys only: Python attributes, calls and files are not there to reach."""
    data = {"host": {"name": "h"}, "f": "text"}
    try:
        out = render(attempt, data)
    except ExprError:
        return
    assert out in ("x", "")


def test_sop_fields_stay_text_with_actions() -> None:
    """A SOP field is text with actions: no variables, no blocks (its checks read every action alone),
    and a missing key is nil there, as before the engine moved."""
    from smallyi.sop.expr import compile_template

    with pytest.raises(ExprError, match=r"variables \(\$x\) cannot be used here"):
        compile_template("{{ $x := 1 }}")
    with pytest.raises(ExprError, match="unknown function 'if'"):
        compile_template("{{ if .x }}y{{ end }}")
    assert compile_template("a{{ .nope }}b{{/* note */}}").render({}) == "ab"
