"""The README's two commands: the test command is exactly what .ci/run executes, the quickstart runs the
quickstart recipe, and both set up the package the same way."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def block(marker: str) -> str:
    """The command inside the fenced block between <!-- ci:marker --> and <!-- /ci:marker -->."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- ci:{marker} -->\s*```bash\n(.*?)\n```\s*<!-- /ci:{marker} -->", text, re.S)
    assert match, f"README.md has no ci:{marker} block"
    return match.group(1).strip()


def ci_extracted_command() -> str:
    """Run .ci/run's own extraction line (the `cmd=$(...)` assignment) and return what it would execute."""
    script = (ROOT / ".ci" / "run").read_text()
    line = next(x for x in script.splitlines() if x.startswith("cmd=$("))
    out = subprocess.run(["bash", "-c", f"{line}\nprintf '%s' \"$cmd\""], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_readme_has_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    assert text.count("```bash") == 2
    assert "\n" not in block("quickstart") and "\n" not in block("test")


def test_ci_runs_the_readme_test_command():
    command = block("test")
    assert ci_extracted_command() == command
    assert "pytest" in command and "ruff check" in command


def test_quickstart_command_runs_the_quickstart_recipe():
    quick = block("quickstart")
    assert quick.endswith("hercules recipe run recipes/quickstart.yaml")
    recipe = ROOT / "recipes" / "quickstart.yaml"
    assert recipe.is_file()
    assert "hercules recipe run recipes/quickstart.yaml" in recipe.read_text().splitlines()[0]


def test_both_commands_install_the_package_the_same_way():
    def setup_steps(command: str) -> list[str]:
        return [s.strip() for s in command.split("&&") if s.strip().startswith("pip install")]

    quick, test = setup_steps(block("quickstart")), setup_steps(block("test"))
    assert quick[0] == test[0]  # the same torch pin
    extras = re.search(r'-e "\.\[(.*?)\]"', test[1]).group(1).split(",")
    assert set(re.search(r'-e "\.\[(.*?)\]"', quick[1]).group(1).split(",")) <= set(extras)
    assert quick[2:] == test[2:]  # the same extra no-deps installs


@pytest.mark.parametrize("marker", ["quickstart", "test"])
def test_commands_reference_installable_extras(marker):
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for group in re.findall(r'-e "\.\[(.*?)\]"', block(marker)):
        assert set(group.split(",")) <= set(extras)
