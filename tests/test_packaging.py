"""A normal (non-editable) install ships every config, and the commands find them from anywhere."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_wheel_ships_every_config_and_the_evaluator_and_composes_from_another_directory(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "outputs", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "-q"],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("gan_cli-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {name for name in names if name.endswith(".yaml")}
    expected = {"gan_cli/configs/" + str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").rglob("*.yaml")}
    assert expected and expected == shipped
    assert "gan_cli/metrics/evaluator.pt" in names
    assert "gan_cli/metrics/domain_evaluator.pt" in names

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True)
    probe = (
        "import gan_cli, gan_cli.config\n"
        "from hydra import compose, initialize_config_module\n"
        "with initialize_config_module(version_base='1.3', config_module='gan_cli.configs'):\n"
        "    cfg = compose('train', overrides=['experiment=dcgan_mnist'])\n"
        "from gan_cli.metrics.evaluator import load_evaluator\n"
        "load_evaluator()  # the installed weights pass their SHA-256 check\n"
        "print(gan_cli.__file__, cfg.model.name)\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert result.returncode == 0, result.stderr
    location, model = result.stdout.split()
    assert location.startswith(str(site)) and model == "dcgan"
