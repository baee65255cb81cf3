"""Hostile and malformed recipe files: every one gets a one-line error naming the file, field or line, and rc 2.

Covers bytes that are not UTF-8, deep nesting, alias bombs, oversized files, duplicate keys, non-finite floats,
bounds, task and length names, folders and pipes given as recipes, ``recipe list`` over broken files, and
``--no-plugins``. A property-based test generates malformed recipes and checks the same contract.
"""

from __future__ import annotations

import os
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hercules.cli.main import app
from hercules.recipes.loading import RecipeError, load_recipe
from hercules.recipes.yaml_input import MAX_BYTES

runner = CliRunner(env={"COLUMNS": "200"})

BASE = {
    "name": "probe",
    "backbone": {"name": "tiny:llama"},
    "augment": {"memory": {"model": {"kind": "mlp", "depth": 2, "expansion": 2.0}, "rule": {"kind": "titans"}}},
    "peft": {"preset": "memory_lora", "lora_alpha": 16.0},
    "data": {"kind": "babilong", "tasks": ["qa1"], "lengths": ["0k"], "samples": 4},
    "training": {"max_steps": 2, "lr": 1e-3, "eps": 1e-8, "weight_decay": 0.0, "betas": [0.9, 0.999]},
    "evaluation": {"tasks": ["qa1"], "lengths": ["0k"], "samples_per_task": 2},
}


def _validate(path, *extra):
    result = runner.invoke(app, ["recipe", "validate", str(path), *extra])
    return result.exit_code, result.output.strip()


def _assert_one_line_rc2(path, *needles, extra=()):
    rc, out = _validate(path, *extra)
    assert rc == 2, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out[:2000]
    for needle in needles:
        assert needle in out, out
    return out


def test_base_recipe_is_valid(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert _validate(path)[0] == 0


@pytest.mark.parametrize("data", [
    b"name: caf\xe9\n",  # latin-1
    "name: café\n".encode("utf-16"),
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    bytes(range(256)),
])
def test_non_utf8_files_name_the_line_and_the_fix(tmp_path, data):
    path = tmp_path / "r.yaml"
    path.write_bytes(data)
    _assert_one_line_rc2(path, str(path), "not UTF-8", "save the recipe as UTF-8")


def test_a_bad_file_does_not_stop_the_others_being_checked(tmp_path):
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    good.write_text(yaml.safe_dump(BASE))
    result = runner.invoke(app, ["recipe", "validate", str(bad), str(good)])
    assert result.exit_code == 2 and f"ok {good}" in result.output and "not UTF-8" in result.output


@pytest.mark.parametrize("command", ["show", "run"])
def test_show_and_run_report_bad_bytes_as_bad_input(tmp_path, command):
    path = tmp_path / "r.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    result = runner.invoke(app, ["recipe", command, str(path)])
    assert result.exit_code == 2 and "not UTF-8" in result.output and "UnicodeDecodeError" not in result.output


def test_deep_nesting_is_refused_with_its_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("x: " + "[" * 500 + "]" * 500 + "\n")
    _assert_one_line_rc2(path, "line 1", "nested deeper than")


@pytest.mark.parametrize("levels", [4, 8])
def test_alias_bombs_are_refused_quickly_and_briefly(tmp_path, levels):
    lines = ['a0: &a0 ["xxxxxxxxxx", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxxxxxxx"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nname: bomb\n")
    start = time.perf_counter()
    out = _assert_one_line_rc2(path, "aliases are expanded")
    assert time.perf_counter() - start < 5 and len(out) < 500


def test_long_values_are_cut_in_error_messages(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(BASE | {"seed": "x" * 100_000}))
    out = _assert_one_line_rc2(path, "seed")
    assert len(out) < 500


def test_oversized_files_are_refused_without_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\n" + "# filler\n" * (MAX_BYTES // 9 + 1))
    start = time.perf_counter()
    _assert_one_line_rc2(path, "too large")
    assert time.perf_counter() - start < 2


def test_duplicate_keys_are_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(BASE) + "name: again\n")
    _assert_one_line_rc2(path, "duplicate key 'name'", "first at line")


def _with(path_in_recipe: str, value):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    node = data
    *parents, last = path_in_recipe.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return data


FINITE = ["training.lr", "training.eps", "training.weight_decay", "training.epochs",
          "augment.memory.rule.max_lr", "augment.memory.model.expansion", "peft.lora_alpha"]


@pytest.mark.parametrize("field", FINITE)
@pytest.mark.parametrize("value", [float("inf"), float("nan"), "inf", "-inf", "nan"])
def test_non_finite_numbers_are_refused(tmp_path, field, value):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_with(field, value)))
    _assert_one_line_rc2(path, field.rsplit(".", 1)[-1], "finite")


@pytest.mark.parametrize("betas", [[float("inf"), 0.9], [0.9, float("nan")], [1.0, 0.9], [-0.1, 0.9]])
def test_betas_are_finite_and_in_the_unit_interval(tmp_path, betas):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_with("training.betas", betas)))
    _assert_one_line_rc2(path, "training.betas")


@pytest.mark.parametrize(("field", "value", "named"), [
    ("data.tasks", ["qa99"], "qa99"),
    ("data.tasks", [], "non-empty"),
    ("data.tasks", ["qa1", "qa1"], "more than once"),
    ("data.lengths", ["7k"], "7k"),
    ("data.lengths", [], "must not be empty"),
    ("evaluation.lengths", ["7k"], "7k"),
    ("seed", -1, "seed"),
    ("seed", 2**70, "seed"),
    ("evaluation.seed", -1, "evaluation.seed"),
    ("data.samples", 10**12, "data.babilong.samples"),
    ("evaluation.samples_per_task", 10**9, "samples_per_task"),
    ("augment.memory.model.depth", 10**6, "depth"),
    ("augment.memory.heads", 10**6, "heads"),
    ("backbone.name", "tiny:nosuch", "tiny:llama"),
])
def test_out_of_range_values_name_the_field(tmp_path, field, value, named):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_with(field, value)))
    _assert_one_line_rc2(path, named)


@pytest.mark.parametrize(("data", "named"), [
    ({"kind": "lm", "source": "files"}, "data.files is required"),
    ({"kind": "lm", "source": "files", "files": ["x.txt"], "num_blocks": 10**9}, "data.lm.num_blocks"),
    ({"kind": "lm", "source": "files", "files": ["x.txt"], "block_size": 10**9}, "data.lm.block_size"),
    ({"kind": "babilong", "source": {"source": "local"}}, "local_path"),
])
def test_incomplete_or_oversized_data_sections(tmp_path, data, named):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(BASE | {"data": data}))
    _assert_one_line_rc2(path, named)


def test_folders_and_pipes_are_named_for_what_they_are(tmp_path):
    _assert_one_line_rc2(tmp_path, "is a folder, not a recipe file")
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    _assert_one_line_rc2(fifo, "not a regular file")
    result = runner.invoke(app, ["recipe", "show", str(tmp_path)])
    assert result.exit_code == 2 and "is a folder" in result.output


def test_recipe_list_reports_broken_files_and_lists_the_rest(tmp_path):
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(BASE | {"description": "fine"}))
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "latin.yaml").write_bytes(b"name: caf\xe9\n")
    result = runner.invoke(app, ["recipe", "list", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "fine" in result.output and "broken.yaml line 2" in result.output and "not UTF-8" in result.output


def test_no_plugins_does_not_import_them(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "evil_plugin_mod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(BASE | {"plugins": ["evil_plugin_mod"]}))
    assert _validate(path, "--no-plugins")[0] == 0 and not marker.exists()
    assert _validate(path)[0] == 0 and marker.exists()
    help_text = runner.invoke(app, ["recipe", "validate", "--help"]).output
    assert "--no-plugins" in help_text and "runs their code" in " ".join(help_text.split())


def test_set_values_get_the_same_checks(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(BASE))
    with pytest.raises(RecipeError, match="training.lr"):
        load_recipe(path, ["training.lr=.inf"])
    with pytest.raises(RecipeError, match="data.babilong.tasks"):
        load_recipe(path, ["data.tasks=[qa21]"])


# ---- property: malformed recipes of many kinds → one line per problem, rc 2, no traceback, quickly --------

_DEFECTS = st.one_of(
    st.binary(min_size=1, max_size=200).filter(lambda b: _not_utf8(b)).map(lambda b: ("bytes", b)),
    st.integers(1, 400).map(lambda n: ("text", "x: " + "[" * (n + 50) + "]" * (n + 50) + "\n")),
    st.sampled_from(FINITE).flatmap(lambda f: st.sampled_from([".inf", "-.inf", ".nan", "inf", "nan"]).map(
        lambda v: ("set", f, v))),
    st.sampled_from(["seed", "data.samples", "augment.memory.model.depth", "evaluation.samples_per_task"]).flatmap(
        lambda f: st.integers(10**10, 10**30).map(lambda v: ("set", f, str(v)))),
    st.sampled_from(["seed", "evaluation.seed", "training.lr", "data.samples"]).map(lambda f: ("set", f, "-1")),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz_"), min_size=3, max_size=12).filter(
        lambda k: k not in BASE).map(lambda k: ("append", f"{k}: 1\n")),
    st.sampled_from(sorted(BASE)).map(lambda k: ("append", f"{k}: null\n{k}: 1\n")),
    st.lists(st.sampled_from(["qa0", "qa21", "qa", "QA1", "qa1 ", "x"]), min_size=1, max_size=3).map(
        lambda t: ("set", "data.tasks", "[" + ", ".join(f'"{x}"' for x in t) + "]")),
    st.integers(3, 9).map(lambda depth: ("text", "\n".join(
        ['a0: &a0 ["xxxxxxxxxxxxxxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]']
        + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 40)}]" for i in range(1, depth + 1)]) + "\nname: x\n")),
    st.text(min_size=1, max_size=200).filter(lambda t: _not_a_mapping(t)).map(lambda t: ("text", t)),
)


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _not_a_mapping(text: str) -> bool:
    try:
        return not isinstance(yaml.safe_load(text), dict)
    except (yaml.YAMLError, RecursionError):
        return True


def _write(tmp_path, defect) -> tuple[os.PathLike, list[str]]:
    path = tmp_path / "h.yaml"
    kind, *args = defect
    if kind == "bytes":
        path.write_bytes(args[0])
    elif kind == "text":
        path.write_text(args[0], encoding="utf-8")
    elif kind == "append":
        path.write_text(yaml.safe_dump(BASE) + args[0])
    else:
        path.write_text(yaml.safe_dump(BASE))
        return path, ["--set", f"{args[0]}={args[1]}"]
    return path, []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(defect=_DEFECTS)
def test_property_malformed_recipes_get_one_line_rc2_quickly(tmp_path, defect):
    path, extra = _write(tmp_path, defect)
    start = time.perf_counter()
    rc, out = _validate(path, *extra)
    elapsed = time.perf_counter() - start
    assert rc == 2, (defect, out[:1000])
    assert "Traceback" not in out and "Error:" not in out.split(":", 1)[0], out[:1000]
    assert len(out.splitlines()) == 1 and len(out) < 1000, out[:1000]
    assert elapsed < 3.0, (defect, elapsed)


def _field_paths() -> list[str]:
    from hercules.cli.common import field_rows
    from hercules.recipes.schema import Recipe

    return sorted(row[0] for row in field_rows(Recipe) if not row[0].startswith("data."))


_ODD_VALUES = st.sampled_from(["[x]", "{a: 1}", "{kind: [1]}", "x", "-5", "1e300", "null", "''", "[[[]]]", "2**70",
                               "{kind: mlp, depth: {a: b}}", "[.nan]", "!!binary aGk=", "2001-01-01", "~"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(_field_paths()), value=_ODD_VALUES)
def test_property_any_value_at_any_field_is_accepted_or_one_line_per_problem(tmp_path, field, value):
    path = tmp_path / "h.yaml"
    path.write_text(yaml.safe_dump(BASE))
    rc, out = _validate(path, "--set", f"{field}={value}")
    assert rc in (0, 2), (field, value, out[:1000])
    assert "Traceback" not in out and len(out) < 4000, out[:1000]
    if rc == 2:
        assert all(line.startswith(("invalid ", str(path))) for line in out.splitlines()), out[:1000]
