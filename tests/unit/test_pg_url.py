"""DATABASE_URL handling and SQLSTATE classification at the Postgres adapter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

from engine.adapters.pg import Database
from engine.adapters.pgerrors import classify, translate, translated
from engine.adapters.pgurl import is_pooled, options, redact, scrub
from engine.core.errors import ConfigError, DatabaseError
from tests.fixtures.aio import run

NEON_POOLED = (
    "postgresql://neondb_owner:npg_S3cr3t@ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech"
    "/neondb?sslmode=require&channel_binding=require"
)
NEON_DIRECT = NEON_POOLED.replace("-pooler", "")


def test_redact_masks_the_password_in_the_userinfo() -> None:
    assert redact("postgresql://app:s3cr%40t@db:5432/x?sslmode=require") == (
        "postgresql://app:***@db:5432/x?sslmode=require"
    )


def test_redact_masks_a_password_given_as_a_query_parameter() -> None:
    assert redact("postgresql://app@db/x?password=hunter2&sslmode=disable") == (
        "postgresql://app@db/x?password=***&sslmode=disable"
    )


def test_redact_leaves_a_url_without_password_alone() -> None:
    assert redact("postgresql://app@db:5432/x") == "postgresql://app@db:5432/x"


def test_redact_handles_several_hosts() -> None:
    assert (
        redact("postgresql://app:pw@h1:5432,h2:5433/x") == "postgresql://app:***@h1:5432,h2:5433/x"
    )


def test_neon_pooled_host_gets_no_statement_cache_and_loses_channel_binding() -> None:
    opts = options(NEON_POOLED)
    assert opts.dsn == (
        "postgresql://neondb_owner:npg_S3cr3t@ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech"
        "/neondb?sslmode=require"
    )
    assert opts.statement_cache_size == 0
    assert opts.redacted == (
        "postgresql://neondb_owner:***@ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech"
        "/neondb?sslmode=require"
    )


def test_neon_direct_host_keeps_the_statement_cache_and_tls_mode() -> None:
    opts = options(NEON_DIRECT)
    assert opts.statement_cache_size == 100
    assert opts.dsn.endswith("/neondb?sslmode=require")


def test_pooler_detection_looks_at_the_host_only() -> None:
    assert is_pooled(NEON_POOLED)
    assert not is_pooled("postgresql://u-pooler:pw@db.example.com/x")
    assert not is_pooled("postgresql://u@db.example.com/x-pooler")


def test_a_url_that_is_not_postgres_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        options("mysql://root:hunter2@db/x")
    assert str(caught.value) == (
        "DATABASE_URL must start with postgresql:// or postgres://, got scheme 'mysql'; "
        "write postgresql://USER:PASSWORD@HOST:5432/DB"
    )


@pytest.mark.parametrize(
    "url",
    [
        "host=db user=app password=hunter2",
        "postgresql:/app:hunter2@db/x",
        "postgresql//app:hunter2@db/x",
        "post gres://app:hunter2@db/x",
    ],
)
def test_a_value_that_is_not_a_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        options(url)
    assert "hunter2" not in str(caught.value)
    assert str(caught.value) == (
        "DATABASE_URL must start with postgresql:// or postgres://, got a value that is not "
        "a URL; write postgresql://USER:PASSWORD@HOST:5432/DB"
    )


def test_scrub_masks_the_plain_and_the_percent_encoded_password() -> None:
    opts = options("postgresql://app:p%40ss%2Fw0rd@db/x")
    text = "auth failed for p@ss/w0rd in postgresql://app:p%40ss%2Fw0rd@db/x"
    assert scrub(text, opts.secrets) == "auth failed for *** in postgresql://app:***@db/x"


@pytest.mark.parametrize(
    ("sqlstate", "message", "expected"),
    [
        ("08006", "", ("connection_exception", True)),
        ("08001", "", ("connection_exception", True)),
        ("40001", "", ("serialization_failure", True)),
        ("40P01", "", ("deadlock_detected", True)),
        ("53300", "", ("too_many_connections", True)),
        ("53200", "", ("insufficient_resources", True)),
        ("57014", "canceling statement due to statement timeout", ("statement_timeout", True)),
        ("57014", "canceling statement due to user request", ("query_canceled", True)),
        ("57P01", "", ("admin_shutdown", True)),
        ("55P03", "", ("lock_not_available", True)),
        ("42601", "", ("syntax_error", False)),
        ("42P01", "", ("undefined_table", False)),
        ("42703", "", ("undefined_column", False)),
        ("42501", "", ("syntax_error_or_access_rule_violation", False)),
        ("22012", "", ("data_exception", False)),
        ("23505", "", ("integrity_constraint_violation", False)),
        ("28P01", "", ("invalid_password", False)),
        ("XX000", "", ("postgres_error", False)),
    ],
)
def test_sqlstate_decides_the_error_class_and_whether_to_retry(
    sqlstate: str, message: str, expected: tuple[str, bool]
) -> None:
    assert classify(sqlstate, message) == expected


def server_error(
    sqlstate: str, message: str, detail: str | None = None, constraint: str | None = None
) -> asyncpg.PostgresError:
    fields = {
        "C": sqlstate,
        "M": message,
        **({"D": detail} if detail else {}),
        **({"n": constraint} if constraint else {}),
    }
    return asyncpg.PostgresError.new(fields)


def test_server_error_becomes_one_line_with_class_sqlstate_and_marked_detail() -> None:
    err = translate(server_error("23505", "duplicate key value", "Key (id)=(5) already exists."))
    assert (err.error_class, err.transient) == ("integrity_constraint_violation", False)
    assert str(err) == (
        "integrity_constraint_violation (23505): duplicate key value"
        " DETAIL: Key (id)=(5) already exists."
    )


def test_server_error_names_its_constraint_once() -> None:
    named = 'duplicate key value violates unique constraint "t_pkey"'
    assert str(translate(server_error("23505", named, constraint="t_pkey"))) == (
        f"integrity_constraint_violation (23505): {named}"
    )
    assert str(translate(server_error("23503", "violates foreign key", constraint="t_fk"))) == (
        'integrity_constraint_violation (23503): violates foreign key (constraint "t_fk")'
    )


@pytest.mark.parametrize(
    ("exc", "error_class", "transient"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "connection", True),
        (ConnectionResetError(104, "reset by peer"), "connection", True),
        (TimeoutError(), "timeout", True),
        (
            asyncpg.exceptions.ConnectionDoesNotExistError("closed mid-operation"),
            "connection_exception",
            True,
        ),
        (
            asyncpg.InterfaceError("cannot perform operation: connection is closed"),
            "connection",
            True,
        ),
        (asyncpg.InterfaceError("another operation is in progress"), "interface_error", False),
    ],
)
def test_connection_level_failures_are_transient(
    exc: BaseException, error_class: str, transient: bool
) -> None:
    err = translate(exc)
    assert (err.error_class, err.transient) == (error_class, transient)


def test_translated_error_never_carries_the_password_nor_a_cause_that_does() -> None:
    secrets = options("postgresql://app:hunter2@db/x").secrets
    with pytest.raises(DatabaseError) as caught, translated(secrets, "cannot connect"):
        raise OSError("could not reach postgresql://app:hunter2@db/x")
    assert (
        str(caught.value) == "cannot connect: connection: could not reach postgresql://app:***@db/x"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_translated_error_keeps_a_harmless_cause() -> None:
    cause = ConnectionResetError(104, "reset by peer")
    with pytest.raises(DatabaseError) as caught, translated(()):
        raise cause
    assert caught.value.__cause__ is cause


async def open_and_close(url: str) -> None:
    async with Database.open(url, connect_timeout=2):
        pass


def test_malformed_url_is_a_configuration_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        run(open_and_close("postgresql://app:hunter2@db:notaport/x"))
    assert str(caught.value) == (
        "DATABASE_URL postgresql://***@db:notaport/x is malformed: the port is not a number; "
        f"{ENCODE_HINT}"
    )
    assert caught.value.__cause__ is None


ENCODE_HINT = (
    "if the user name or password contains / ? # @ : [ ] or %, percent-encode it"
    " (@ is %40, / is %2F, # is %23)"
)
LOCAL = "127.0.0.1:5433/postgres"


@pytest.mark.parametrize(
    ("url", "what"),
    [
        (
            f"postgresql://postgres:Sup3r/Secret@{LOCAL}",
            "a / or ? comes before the @ that ends the user name and password",
        ),
        (
            f"postgresql://postgres:Sup3r?Secret@{LOCAL}",
            "a / or ? comes before the @ that ends the user name and password",
        ),
        (f"postgresql://postgres:Sup3r#Secret@{LOCAL}", "it contains #, which ends the URL there"),
        (
            f"postgresql://postgres:p@ss:w0rd@{LOCAL}",
            "the part before the host holds more than one @",
        ),
        (
            f"postgresql://postgres:50%off@{LOCAL}",
            "a % in the user name or password is not followed by two hex digits",
        ),
        (f"postgresql://postgres:[pw]@{LOCAL}", "the user name or password holds [ or ]"),
    ],
)
def test_a_password_with_an_unencoded_special_character_is_reported_without_any_of_it(
    url: str, what: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        options(url)
    assert str(caught.value) == (
        f"DATABASE_URL postgresql://***@{LOCAL} is malformed: {what}; {ENCODE_HINT}"
    )


@pytest.mark.parametrize(
    ("url", "shown", "what"),
    [
        (
            "postgresql://u:pw@db:99999/x",
            "postgresql://***@db:99999/x",
            "the port is out of range 1-65535",
        ),
        (
            "postgresql://u:pw@h1,,h2/x",
            "postgresql://***@h1,,h2/x",
            "the host list has an empty entry",
        ),
        (
            "postgresql://u:pw@[::1/x",
            "postgresql://***@[::1/x",
            "an IPv6 host must be written [ADDRESS] or [ADDRESS]:PORT",
        ),
        (
            "postgresql://u@db/x?password=hunter2&sslmode",
            "postgresql://***@db/x?password=***",
            "a field of the query after ? has no =",
        ),
        (
            "postgresql://db/x?port=5x",
            "postgresql://db/x?port=5x",
            "the query's port= is not a number",
        ),
    ],
)
def test_a_malformed_host_port_or_query_is_named(url: str, shown: str, what: str) -> None:
    with pytest.raises(ConfigError) as caught:
        options(url)
    assert str(caught.value) == f"DATABASE_URL {shown} is malformed: {what}; {ENCODE_HINT}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u@db/x?password=ab@cd#ef", "postgresql://***"),
        ("postgresql://u:pw@db/x?password=ab&cd#", "postgresql://***@db/x?password=***"),
    ],
)
def test_a_query_password_is_masked_to_the_end_of_a_malformed_url(url: str, shown: str) -> None:
    with pytest.raises(ConfigError) as caught:
        options(url)
    assert str(caught.value).startswith(f"DATABASE_URL {shown} is malformed: ")


def test_a_query_password_beside_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        options("postgresql://u@db/x?password=abcd&efgh=ijkl")
    assert str(caught.value) == (
        "DATABASE_URL postgresql://***@db/x?password=*** is malformed: the query holds "
        f"password= and a parameter Postgres does not know; {ENCODE_HINT}"
    )


def test_a_percent_encoded_password_with_every_special_character_is_well_formed() -> None:
    opts = options(f"postgresql://postgres:{quote('/?#@:[]% x', safe='')}@{LOCAL}")
    assert opts.redacted == f"postgresql://postgres:***@{LOCAL}"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@db.example.com/x",
        "postgresql://u:pw@10.0.0.5:5432/x",
        "postgresql://u:pw@localhost,db.example.com/x",
        "postgresql://u:pw@/x?host=db.example.com",
        NEON_DIRECT.replace("sslmode=require&", ""),
    ],
)
def test_a_remote_host_without_sslmode_gets_tls_verified_against_the_system_cas(url: str) -> None:
    opts = options(url)
    assert opts.verify_with_system_cas
    assert "sslmode" not in opts.dsn


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@localhost/x",
        "postgresql://u:pw@127.0.0.1:5433/x",
        "postgresql://u:pw@[::1]:5433/x",
        "postgresql:///x?host=/var/run/postgresql",
        "postgresql:///x",
    ],
)
def test_a_loopback_host_or_socket_keeps_the_drivers_default(url: str) -> None:
    opts = options(url)
    assert not opts.verify_with_system_cas
    assert "sslmode" not in opts.dsn


@pytest.mark.parametrize(
    "mode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
)
def test_an_explicit_sslmode_is_kept_as_written(mode: str) -> None:
    opts = options(f"postgresql://u:pw@db.example.com/x?sslmode={mode}")
    assert opts.dsn == f"postgresql://u:pw@db.example.com/x?sslmode={mode}"
    assert not opts.verify_with_system_cas


@pytest.mark.parametrize("query", ["", "?sslrootcert=/etc/ca.pem"])
def test_pgsslmode_counts_as_an_explicit_sslmode(query: str) -> None:
    opts = options(f"postgresql://u:pw@db.example.com/x{query}", env_sslmode="require")
    assert "sslmode" not in opts.dsn
    assert not opts.verify_with_system_cas


def test_an_sslrootcert_without_sslmode_means_verify_full_against_that_certificate() -> None:
    opts = options("postgresql://u:pw@db.example.com/x?sslrootcert=/etc/ca.pem")
    assert opts.dsn == (
        "postgresql://u:pw@db.example.com/x?sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-full"
    )
    assert not opts.verify_with_system_cas


def test_runtime_entry_points_import_without_asyncpg() -> None:
    code = "import sys, engine.app.wiring; print('asyncpg' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "False"
