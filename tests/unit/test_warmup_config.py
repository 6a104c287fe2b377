"""store_from_env: which store, and errors that name the variable, never its value."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.adapters.localstore import LocalDirectoryStore
from engine.adapters.r2config import r2_settings_from_env
from engine.adapters.s3 import R2CounterStore
from engine.app.wiring import store_from_env
from engine.core.errors import ConfigError
from tests.fixtures.aio import run

KEY_ID = "a1b2c3d4e5f6a7b8c9d0"
SECRET = "s3cr3t-value-that-must-never-be-printed"
ACCOUNT = "0123456789abcdef0123456789abcdef"


def clock() -> datetime:
    return datetime(2026, 11, 28, tzinfo=UTC)


def test_no_r2_variables_give_the_local_directory_store(tmp_path: Path) -> None:
    store = store_from_env({}, bucket="counters", local_dir=tmp_path, clock=clock)
    assert isinstance(store, LocalDirectoryStore)
    assert store.root == tmp_path


def test_account_id_gives_the_r2_endpoint_and_the_manifest_bucket(tmp_path: Path) -> None:
    env = {"R2_ACCOUNT_ID": ACCOUNT, "R2_ACCESS_KEY_ID": KEY_ID, "R2_SECRET_ACCESS_KEY": SECRET}
    store = store_from_env(env, bucket="counters", local_dir=tmp_path, clock=clock)
    assert isinstance(store, R2CounterStore)
    assert repr(store) == (
        f"R2CounterStore(endpoint_url='https://{ACCOUNT}.r2.cloudflarestorage.com',"
        " bucket='counters')"
    )
    run(store.aclose())


def test_explicit_endpoint_and_bucket_override(tmp_path: Path) -> None:
    env = {
        "R2_ENDPOINT_URL": "http://127.0.0.1:9000",
        "R2_ACCOUNT_ID": ACCOUNT,
        "R2_BUCKET": "other",
        "R2_ACCESS_KEY_ID": KEY_ID,
        "R2_SECRET_ACCESS_KEY": SECRET,
    }
    settings = r2_settings_from_env(env, bucket="counters")
    assert settings is not None
    assert (settings.endpoint_url, settings.bucket) == ("http://127.0.0.1:9000", "other")


def test_settings_repr_hides_the_credentials() -> None:
    env = {"R2_ACCOUNT_ID": ACCOUNT, "R2_ACCESS_KEY_ID": KEY_ID, "R2_SECRET_ACCESS_KEY": SECRET}
    text = repr(r2_settings_from_env(env, bucket="counters"))
    assert KEY_ID not in text and SECRET not in text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"R2_ACCOUNT_ID": ACCOUNT, "R2_SECRET_ACCESS_KEY": SECRET},
            "R2_ACCESS_KEY_ID is not set; R2 needs R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY",
        ),
        (
            {"R2_ENDPOINT_URL": "https://x.example", "R2_ACCESS_KEY_ID": KEY_ID},
            "R2_SECRET_ACCESS_KEY is not set; R2 needs R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY",
        ),
        (
            {"R2_SECRET_ACCESS_KEY": SECRET},
            "R2_SECRET_ACCESS_KEY is set but neither R2_ENDPOINT_URL nor R2_ACCOUNT_ID is;"
            " set R2_ACCOUNT_ID (or R2_ENDPOINT_URL), or unset the R2 keys",
        ),
        (
            {"R2_ENDPOINT_URL": f"https://{KEY_ID}:{SECRET}@x.example"},
            "R2_ENDPOINT_URL is not an http(s) URL without credentials;"
            " use https://<account_id>.r2.cloudflarestorage.com",
        ),
        (
            {"R2_ENDPOINT_URL": "https://x.example:abc", "R2_ACCESS_KEY_ID": KEY_ID},
            "R2_ENDPOINT_URL is not an http(s) URL without credentials;"
            " use https://<account_id>.r2.cloudflarestorage.com",
        ),
        (
            {"R2_ACCOUNT_ID": f"{ACCOUNT}.evil.example/"},
            "R2_ACCOUNT_ID is not an account id; use the 32-character id",
        ),
    ],
)
def test_bad_r2_configuration_names_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        store_from_env(env, bucket="counters", local_dir=tmp_path, clock=clock)
    assert str(info.value) == message
    assert SECRET not in str(info.value)


def test_missing_bucket_is_a_config_error(tmp_path: Path) -> None:
    env = {"R2_ACCOUNT_ID": ACCOUNT, "R2_ACCESS_KEY_ID": KEY_ID, "R2_SECRET_ACCESS_KEY": SECRET}
    with pytest.raises(ConfigError) as info:
        store_from_env(env, bucket=None, local_dir=tmp_path, clock=clock)
    assert str(info.value) == "no R2 bucket; set R2_BUCKET or r2_bucket in jobs.yaml"
