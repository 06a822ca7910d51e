"""Project hygiene: environment.yml and requirements agree; notebooks have parameters that the profiles set."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def requirement_names(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_environment_yml_installs_the_pinned_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert any(str(d).startswith("python=3.11") for d in deps)
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.txt" in pip_section and "-c constraints.txt" in pip_section
    requirements = requirement_names(ROOT / "requirements.txt")
    constraints = requirement_names(ROOT / "constraints.txt")
    assert requirements["torch"] == constraints["torch"] == "2.13.0"
    assert all(version for version in requirements.values()), "every requirement is pinned with =="


def test_pyproject_dependencies_are_in_requirements():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = requirement_names(ROOT / "requirements.txt")
    for spec in project["dependencies"]:
        name = spec.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        assert name in requirements, f"{name} is a dependency but not pinned in requirements.txt"


def notebook_parameters(path: Path) -> set[str]:
    notebook = json.loads(path.read_text())
    cells = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    names = set()
    for line in "".join(cells[0]["source"]).splitlines():
        if "=" in line and not line.startswith((" ", "#")):
            names.add(line.split("=", 1)[0].strip())
    return names


def test_every_chapter_has_parameters_set_by_both_profiles():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    profiles = {name: yaml.safe_load((ROOT / "params" / f"{name}.yaml").read_text()) for name in ("smoke", "full")}
    for path in notebooks:
        declared = notebook_parameters(path)
        assert "profile" in declared
        for name, params in profiles.items():
            assert path.stem in params, f"params/{name}.yaml has no entry for {path.stem}"
            unknown = set(params[path.stem]) - declared
            assert not unknown, f"params/{name}.yaml sets {unknown} that {path.name} does not declare"
            assert params[path.stem]["profile"] == name


def test_toc_lists_existing_chapters_only():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for file in files:
        if file.startswith("chapters/"):
            assert (ROOT / "notebooks" / f"{file.split('/', 1)[1]}.ipynb").exists(), file
        else:
            assert file in {"status", "scoreboard"} or (ROOT / "book" / f"{file}.md").exists(), file
