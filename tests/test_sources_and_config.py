import os
import subprocess
import sys

import pytest
from omegaconf.errors import ConfigKeyError, ValidationError

from pipeline.config import load_config
from pipeline.sources import fingerprint_of, list_inputs, make_sources, split_done, video_id_of
from tests.conftest import ROOT


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_inputs_come_from_a_folder_a_glob_a_file_or_a_manifest(tmp_path):
    a = _touch(tmp_path / "d" / "a.mp4")
    b = _touch(tmp_path / "d" / "sub" / "b.MOV")
    _touch(tmp_path / "d" / "notes.txt.bak")
    assert list_inputs(str(tmp_path / "d")) == [str(a), str(b)]
    assert list_inputs(str(tmp_path / "d" / "*.mp4")) == [str(a)]
    assert list_inputs(str(a)) == [str(a)]
    manifest = tmp_path / "m.txt"
    manifest.write_text("# comment\nd/a.mp4\n" + str(b) + "\nd/a.mp4\n")
    assert list_inputs(str(manifest)) == [str(a), str(b)]  # relative to the manifest, deduplicated
    with pytest.raises(FileNotFoundError):
        list_inputs(str(tmp_path / "missing"))


def test_video_ids_are_stable_across_spellings_of_the_same_path(tmp_path, monkeypatch):
    a = _touch(tmp_path / "a.mp4")
    monkeypatch.chdir(tmp_path)
    assert video_id_of("a.mp4") == video_id_of(str(a)) == video_id_of(f"file://{a}")
    assert video_id_of(str(a)) != video_id_of(str(tmp_path / "b.mp4"))


def test_fingerprint_changes_when_the_file_changes(tmp_path):
    a = _touch(tmp_path / "a.mp4", b"one")
    before = fingerprint_of(str(a))
    a.write_bytes(b"three")
    os.utime(a, ns=(1, 2))
    assert fingerprint_of(str(a)) != before
    assert fingerprint_of(str(a), content_hash=True).startswith(fingerprint_of(str(a)) + "-")


def test_done_sources_are_split_off(tmp_path):
    a, b = _touch(tmp_path / "a.mp4"), _touch(tmp_path / "b.mp4")
    sources = make_sources([str(a), str(b)])
    todo, skipped = split_done(sources, {(sources[0].video_id, sources[0].fingerprint)})
    assert todo == [sources[1]] and skipped == [sources[0]]


def test_profiles_and_overrides_merge_into_typed_config():
    cfg = load_config("local.yaml", ["select.budget=0.1", "resources.visual.max_size=3"])
    assert cfg.select.budget == 0.1
    assert cfg.resources.visual.max_size == 3
    assert cfg.resources.decode.num_cpus == 0.5  # from conf/local.yaml
    cluster = load_config("cluster.yaml")
    assert cluster.resources.visual.num_gpus == 0.5


def test_unknown_keys_and_wrong_types_are_rejected():
    with pytest.raises(ConfigKeyError):
        load_config(None, ["select.budgett=0.1"])
    with pytest.raises(ValidationError):
        load_config(None, ["select.budget=lots"])
    with pytest.raises(ValueError, match="key=value"):
        load_config(None, ["select.budget"])


def test_a_config_error_is_reported_without_loading_torch_or_ray():
    code = (
        "import sys; from jobs.cli import main; "
        "rc = main(['run', '--input', '.', '--output', '/tmp/x', 'shots.detector=nope']); "
        "print(rc, 'torch' in sys.modules, 'ray' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["2", "False", "False"]
    assert "shots.detector='nope' is not registered; choose one of: content, kts" in done.stderr


def test_a_plain_install_finds_its_profiles_from_any_folder(tmp_path):
    # A non-editable install (what cluster nodes get from `pip install .`), used from a
    # folder that has no conf/ of its own.
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    code = (
        "import pipeline, pipeline.config as c; "
        "print(pipeline.__file__); print(c.find_profile('cluster.yaml')); "
        "print(c.load_config('local.yaml').resources.decode.num_cpus)"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    module, profile, decode_cpus = done.stdout.split()
    assert module.startswith(str(site)) and profile.startswith(str(site))
    assert float(decode_cpus) == 0.5
