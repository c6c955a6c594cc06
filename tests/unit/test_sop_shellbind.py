"""Where a value lands in a shell command (``shellscan``) and what may stand there (``shellbind``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from smallyi.errors import InputError
from smallyi.sop.shellbind import compile_shell, evaluated, is_shell
from smallyi.sop.shellscan import hole, scan
from smallyi.sop.variables import VarDecl, parse

H = hole(0)


@pytest.mark.parametrize(("text", "quote", "needs"), [
    (f"ls {H}", "word", ""),
    (f'echo "a {H}"', "dq", ""),
    (f"echo 'a {H}'", "sq", ""),
    (f"echo $'{H}'", "sq", ""),
    (f"cat <<EOF\nit's {H}\nEOF", "dq", ""),
    (f"cat <<'EOF'\n{H}\nEOF", "sq", ""),
    (f"cat <<-\"EOF\"\n\t{H}\n\tEOF\necho after", "sq", ""),
    (f"# a comment {H}\nls", "comment", ""),
    (f'echo "$(echo {H})"', "word", ""),
    (f"x=`echo {H}`", "word", ""),
    (f'echo "${{X:-{H}}}"', "dq", ""),
    (f"echo ${{X:-{H}}}", "word", ""),
    (f"case x in {H}) echo;; esac", "word", ""),
    (f"x=$(case y in a) echo {H};; esac)", "word", ""),
    (f"sh -c 'echo \"{H}\"'", "sq", ""),
    (f"echo $(( {H} + 1 ))", "dq", "number: $((...))"),
    (f"(( {H} > 1 ))", "dq", "number: ((...))"),
    (f"for ((i = 0; i < {H}; i++)); do :; done", "dq", "number: for ((...))"),
    (f"echo $[ {H} ]", "dq", "number: $[...]"),
    (f'echo "$(( $(echo {H}) ))"', "word", "number: $((...))"),
    (f"[[ {H} -gt 1 ]]", "word", "number: [[ ... -eq ... ]]"),
    (f"[[ x == y && 1 -eq {H} ]]", "word", "number: [[ ... -eq ... ]]"),
    (f"let n={H}", "word", "number: let"),
    (f"declare -ri n={H}", "word", "number: declare -i"),
    (f"local -i n; n={H}", "word", "number: n is declared -i"),
    (f'echo "${{s:{H}:2}}"', "dq", "number: a substring ${v:offset}"),
    (f'echo "${{a[{H}]}}"', "dq", "number: an array subscript ${a[...]}"),
    (f"a[{H}]=1", "word", "number: an array subscript a[...]="),
    (f"bash -c 'echo $(( {H} ))'", "sq", "number: $((...))"),
    (f'eval "echo {H}"', "dq", "code: eval"),
    (f"sh -c {H}", "word", "code: a shell's -c string"),
    (f'sudo bash -lc "echo {H}"', "dq", "code: a shell's -c string"),
    (f". {H}", "word", "code: ."),
    (f'trap "rm {H}" EXIT', "dq", "code: trap"),
    (f'ssh web1 "ls {H}"', "dq", "code: ssh"),
    (f"{H} --version", "word", "code: the command's name"),
    (f'x=1 {H} arg', "word", "code: the command's name"),
    (f'declare -a "arr=({H})"', "dq", 'code: declare "a=(...)"'),
    (f"sh -c 'eval \"{H}\"'", "sq", "code: eval"),
    (f"sudo -u {H} systemctl restart x", "word", "code: the program sudo runs"),
    (f"sudo -u root timeout 5 {H}", "word", "code: the program timeout runs"),
    (f"sudo systemctl restart {H}", "word", ""),
    (f"nice -n 5 ls {H}", "word", ""),
    (f"find / -exec {H} \\;", "word", "code: the program find -exec runs"),
    (f'awk "{{print \\"{H}\\"}}" f', "dq", "code: the awk program"),
    (f"awk -v x={H} '{{print x}}' f", "word", ""),
    (f'sed "s/a/{H}/" f', "dq", "code: the sed program"),
    (f"sed -e 's/a/b/' {H}", "word", ""),
    (f'python3 -c "print({H})"', "dq", "code: python3 -c"),
    (f"python3 tool.py {H}", "word", ""),
    (f'command eval "{H}"', "dq", "code: eval"),
    (f"printf -v {H} %s x", "word", "name: printf"),
    (f"printf -v out %s {H}", "word", ""),
    (f"read -r {H}", "word", "name: read"),
    (f"read -p {H} x", "word", ""),
    (f"export {H}=1", "word", "name: export"),
    (f"export X={H}", "word", ""),
    (f"declare -n r={H}", "word", "name: declare -n"),
    (f'echo "${{!{H}}}"', "dq", "name: ${!...}"),
    (f"[[ -v {H} ]]", "word", "name: [[ -v ]]"),
    (f"test -v {H}", "word", "name: test -v"),
    (f"for {H} in a; do :; done", "word", "name: for NAME in"),
    (f"for x in {H}; do :; done", "word", ""),
])
def test_where_a_value_lands(text: str, quote: str, needs: str) -> None:
    """The quoting around a value, and what bash would read it as there."""
    spot = scan(text)[0]
    assert spot.quote == quote
    assert (needs in spot.needs) if needs else not spot.needs, spot.needs


# values that bash runs as a command when they are used as a number or a variable name
CANDIDATES = ["a[$(touch {m})]", "x[`touch {m}`]", "1+a[$(touch {m})]", " a[$(touch {m})]", "a[ $(touch {m}) ]",
              "a[${{x:=$(touch {m})}}]", "a[$((`touch {m}`))]", "a[b[$(touch {m})]]", "_[$(touch {m})]",
              "x=a[$(touch {m})]", "a['$(touch {m})']", "a[\"$(touch {m})\"]", "$(touch {m})", "`touch {m}`",
              "a [$(touch {m})]", "a[1][$(touch {m})]", "[$(touch {m})]", "a[\\$(touch {m})]", "0][$(touch {m})",
              "{{\"a\": [\"$HOME\"]}}", "price[$5]", "n[0]"]
USES = ["(( X ))", "echo $(( X ))", "echo $(( $X ))", "[[ $X -eq 1 ]]", "printf -v \"$X\" %s 1", "echo \"${!X}\"",
        "read -r \"$X\" </dev/null", "test -v \"$X\"", "unset \"$X\"", "declare -n r=\"$X\"; echo \"$r\"",
        "a=(1); echo \"${a[X]}\"", "let X", "s=abc; echo \"${s:X}\""]


def test_every_value_bash_evaluates_is_refused(tmp_path: Path) -> None:
    """Each candidate value is run by real bash in each place it evaluates values; whatever bash ran as a
    command, the guard refuses (the guard may refuse more; values without NAME[ ... $ it lets through)."""
    ran: set[str] = set()
    for raw in CANDIDATES:
        marker = tmp_path / "ran"
        value = raw.format(m=marker)
        for use in USES:
            subprocess.run(["bash", "-c", use], env={"X": value, "PATH": "/usr/bin:/bin"}, capture_output=True,
                           timeout=10)
            if marker.exists():
                ran.add(raw)
                marker.unlink()
        if raw in ran:
            assert evaluated(value), f"bash ran {value!r} but the guard lets it through"
    assert len(ran) >= 10  # the experiment works: bash does run these
    assert not evaluated('{"a": ["$HOME"]}') and not evaluated("n[0]") and not evaluated("$x a[0]")
    assert evaluated("a[" * 300_000) is False  # a long value is read in one pass


def test_refusals_and_references_at_render() -> None:
    """Rendering refuses a value bash would evaluate (unless its variable is vetted), a non-number where bash
    reads a number, a NUL; and writes each reference as its quoting needs."""
    decls = {"x": VarDecl("x"), "n": parse("n", 2)[0], "p": parse("p", {"type": "pattern", "pattern": ".*"})[0]}
    tpl = compile_shell("echo {{ .vars.x }} \"{{ .vars.x }}\" '{{ .vars.x }}' $(( {{ .vars.n }} ))", decls)
    body, env = tpl.render({"vars": {"x": "v", "n": 3}})
    assert body == 'echo "${SY_V_x}" "${SY_V_x}" \'${SY_V_x}\' $(( ${SY_V_n} ))' and env == {"SY_V_x": "v", "SY_V_n": "3"}
    with pytest.raises(InputError, match="holds NAME\\[ and then"):
        tpl.render({"vars": {"x": "a[$(id)]", "n": 3}})
    with pytest.raises(InputError, match="NUL"):
        tpl.render({"vars": {"x": "a\0b", "n": 3}})
    with pytest.raises(InputError, match="is not a whole number"):
        tpl.render({"vars": {"x": "v", "n": "3; id"}})
    assert compile_shell("echo {{ .vars.p }}", decls).render({"vars": {"p": "a[$(id)]"}})[1] == {"SY_V_p": "a[$(id)]"}
    body, env = compile_shell("echo {{ .steps.a.output | trim }} {{ .output | int }}", decls).render(
        {"steps": {"a": {"output": " x "}}, "output": "4"})
    assert body == 'echo "${SY_1}" "${SY_2}"' and env == {"SY_1": "x", "SY_2": "4"}


def test_shells_and_other_interpreters() -> None:
    """Which interpreters read sh syntax (their scripts take references), and which do not."""
    assert all(is_shell(i) for i in ("sh", "bash -e", "/bin/dash", "/usr/bin/env bash", "busybox sh", "zsh"))
    assert not any(is_shell(i) for i in ("python3", "/usr/bin/env python3", "perl -w", "busybox awk", "node"))


def test_every_value_is_placed_whatever_the_text() -> None:
    """On any text (unbalanced quotes, stray parentheses, unterminated here-documents) the reader finds every
    value; one it could not place would be taken for code."""
    import random

    tokens = ["'", '"', "`", "$(", ")", "(", "((", "))", "${", "}", "[", "]", "[[", "]]", "<<EOF\n", "<<'EOF'\n",
              "\nEOF\n", "#", "\n", ";", "&&", "|", " ", "\\", "$'", "case ", " in ", "esac", "eval ", "sh -c ",
              "let ", "declare -i ", "=", "a", "x[", "$[", ":", "-eq", "$((", "{", "<(", ">", "for ((", "$"]
    rng = random.Random(7)
    for _ in range(3000):
        parts, k = [], 0
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.2:
                parts.append(hole(k))
                k += 1
            else:
                parts.append(rng.choice(tokens))
        assert sorted(scan("".join(parts))) == list(range(k)), "".join(parts)
