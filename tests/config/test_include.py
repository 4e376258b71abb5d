"""`include:` files, merged the way the LiteLLM proxy merges them, from a file, S3 and GCS."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
import yaml

from router.config import load_config, parse_config
from router.errors import ConfigError
from tests.config.conftest import GcsStore, S3Store


def deployment(name: str, model: str = "openai/gpt-4o") -> dict[str, object]:
    return {"model_name": name, "litellm_params": {"model": model}}


PARENT = {
    "include": ["models/extra.yaml", "settings.yaml"],
    "model_list": [deployment("parent")],
    "router_settings": {"routing_strategy": "least-busy"},
}
EXTRA = {"model_list": [deployment("extra-a"), deployment("extra-b")],
         "credential_list": [{"credential_name": "shared", "credential_values": {}}]}
SETTINGS = {"router_settings": {"routing_strategy": "latency-based-routing"},
            "litellm_settings": {"num_retries": 4}}


def dump(document: object) -> bytes:
    return yaml.safe_dump(document).encode()


def write_tree(root: Path, files: dict[str, object]) -> None:
    for name, document in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(document if isinstance(document, bytes) else dump(document))


def problems(caught: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return str(caught.value).splitlines()[1:]


def assert_merged(config: object) -> None:
    from router.config import Config

    assert isinstance(config, Config)
    # Lists are appended in include order; any other section is replaced by the later file.
    assert [m.model_name for m in config.model_list] == ["parent", "extra-a", "extra-b"]
    assert [c.credential_name for c in config.credential_list] == ["shared"]
    assert config.router_settings.routing_strategy == "latency-based-routing"
    assert config.litellm_settings.num_retries == 4
    assert config.warnings == [
        "include[1] (settings.yaml): router_settings replaces the one set by the including "
        "config"]


# --- files ------------------------------------------------------------------------------------


def test_included_files_are_merged_relative_to_the_config(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_tree(tmp_path, {"conf/config.yaml": PARENT, "conf/models/extra.yaml": EXTRA,
                          "conf/settings.yaml": SETTINGS})
    with caplog.at_level(logging.WARNING, logger="laneway.config"):
        config = load_config(str(tmp_path / "conf" / "config.yaml"), environ={})
    assert_merged(config)
    assert "router_settings replaces" in caplog.text


def test_absolute_and_parent_paths_are_allowed_for_files(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "models.yaml"
    write_tree(tmp_path, {
        "shared/models.yaml": {"model_list": [deployment("abs")]},
        "shared/up.yaml": {"model_list": [deployment("up")]},
        "conf/config.yaml": {"include": [str(shared), "../shared/up.yaml"]},
    })
    config = load_config(str(tmp_path / "conf" / "config.yaml"), environ={})
    assert [m.model_name for m in config.model_list] == ["abs", "up"]


def test_included_values_resolve_environment_references(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "config.yaml": {"include": ["keys.yaml"]},
        "keys.yaml": {"model_list": [{"model_name": "m", "litellm_params": {
            "model": "openai/gpt-4o", "api_key": "os.environ/INCLUDED_KEY"}}]},
    })
    config = load_config(str(tmp_path / "config.yaml"), environ={"INCLUDED_KEY": "sk-inc"})
    assert config.model_list[0].litellm_params.api_key == "sk-inc"


def test_include_problems_name_the_include(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "config.yaml": {"include": ["a.yaml", "models/extra.yaml", "bad.yaml", "list.yaml",
                                    "nested.yaml", "a.yaml", 7, "config.yaml"]},
        "a.yaml": {"model_list": [deployment("a")]},
        "bad.yaml": b"model_list:\n  - model_name: x\n   litellm_params: [\n",
        "list.yaml": [deployment("x")],
        "nested.yaml": {"include": ["a.yaml"]},
    })
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "config.yaml"), environ={})
    lines = problems(caught)
    assert str(caught.value).startswith(f"config {tmp_path / 'config.yaml'} has 7 problems:")
    assert lines[0] == (f"include[1] (models/extra.yaml): config file "
                        f"{tmp_path / 'models' / 'extra.yaml'} not found")
    assert lines[1].startswith(f"include[2] (bad.yaml): invalid YAML in {tmp_path / 'bad.yaml'} "
                               "at line 3")
    assert lines[2] == ("include[3] (list.yaml): must be a mapping of sections such as "
                        "model_list, not a list")
    assert lines[3].startswith("include[4] (nested.yaml): has an include: of its own; nested "
                               "includes are not supported")
    assert lines[4] == (f"include[5] (a.yaml): {tmp_path / 'a.yaml'} is already included as "
                        "include[0] (a.yaml)")
    assert lines[5] == "include[6]: must be a file path"
    assert lines[6] == (f"include[7] (config.yaml): {tmp_path / 'config.yaml'} is already "
                        "included as the including config")


@pytest.mark.parametrize("value", ["models.yaml", {"file": "models.yaml"}])
def test_include_must_be_a_list(tmp_path: Path, value: object) -> None:
    write_tree(tmp_path, {"config.yaml": {"include": value}, "models.yaml": EXTRA})
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "config.yaml"), environ={})
    assert problems(caught) == [
        "include: must be a list of file paths, e.g. include: [models.yaml]"]


def test_a_uri_is_not_an_include(tmp_path: Path) -> None:
    write_tree(tmp_path, {"config.yaml": {"include": ["s3://elsewhere/models.yaml"]}})
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path / "config.yaml"), environ={})
    assert problems(caught) == [
        "include[0] (s3://elsewhere/models.yaml): must be a path relative to the config, "
        "not a URI"]


def test_parse_config_refuses_an_include_it_cannot_resolve() -> None:
    with pytest.raises(ConfigError, match="include: files are included only when the config is "
                                          "read with load_config"):
        parse_config({"include": ["models.yaml"]}, environ={})


# --- buckets ----------------------------------------------------------------------------------


def test_s3_includes_come_from_the_same_bucket(s3_store: S3Store) -> None:
    bucket = f"cfg-{uuid.uuid4().hex[:8]}"
    for key, document in {"team/config.yaml": PARENT, "team/models/extra.yaml": EXTRA,
                          "team/settings.yaml": SETTINGS}.items():
        s3_store.put(bucket, key, dump(document))
    environ = s3_store.environ(LITELLM_CONFIG_BUCKET_TYPE="s3", LITELLM_CONFIG_BUCKET_NAME=bucket,
                               LITELLM_CONFIG_BUCKET_OBJECT_KEY="team/config.yaml")
    assert_merged(load_config(environ=environ))


def test_s3_include_problems(s3_store: S3Store) -> None:
    bucket = f"cfg-{uuid.uuid4().hex[:8]}"
    s3_store.put(bucket, "team/config.yaml", dump({"include": [
        "missing.yaml", "../../outside.yaml", "/root.yaml", "../team/ok.yaml"]}))
    s3_store.put(bucket, "root.yaml", dump({"model_list": [deployment("root")]}))
    s3_store.put(bucket, "team/ok.yaml", dump({"model_list": [deployment("ok")]}))
    with pytest.raises(ConfigError) as caught:
        load_config(f"s3://{bucket}/team/config.yaml", environ=s3_store.environ())
    assert problems(caught) == [
        f"include[0] (missing.yaml): config object s3://{bucket}/team/missing.yaml not found "
        "(no such key)",
        f"include[1] (../../outside.yaml): leads out of the bucket; an include is read from "
        f"s3://{bucket}/ only",
    ]
    # The two others resolved inside the bucket: from its root, and back into team/.
    s3_store.put(bucket, "team/config.yaml", dump({"include": ["/root.yaml", "../team/ok.yaml"]}))
    config = load_config(f"s3://{bucket}/team/config.yaml", environ=s3_store.environ())
    assert [m.model_name for m in config.model_list] == ["root", "ok"]


def test_gcs_includes_come_from_the_same_bucket(gcs_store: GcsStore) -> None:
    bucket = f"cfg-{uuid.uuid4().hex[:8]}"
    for key, document in {"team/config.yaml": PARENT, "team/models/extra.yaml": EXTRA,
                          "team/settings.yaml": SETTINGS}.items():
        gcs_store.put(bucket, key, dump(document))
    environ = {"STORAGE_EMULATOR_HOST": gcs_store.host}
    assert_merged(load_config(f"gs://{bucket}/team/config.yaml", environ=environ))


def test_gcs_include_problems(gcs_store: GcsStore) -> None:
    bucket = f"cfg-{uuid.uuid4().hex[:8]}"
    gcs_store.put(bucket, "config.yaml", dump({"include": ["absent.yaml", "../up.yaml"]}))
    with pytest.raises(ConfigError) as caught:
        load_config(f"gs://{bucket}/config.yaml",
                    environ={"STORAGE_EMULATOR_HOST": gcs_store.host})
    assert problems(caught) == [
        f"include[0] (absent.yaml): config object gs://{bucket}/absent.yaml not found",
        f"include[1] (../up.yaml): leads out of the bucket; an include is read from "
        f"gs://{bucket}/ only",
    ]
