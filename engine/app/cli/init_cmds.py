"""``cronwright init [DIR] [--cloudflare]``: a new project that validates, generates,
migrates and serves as it is; ``cronwright schema``: the manifest's JSON Schema.

The project's files are package data in ``engine/app/cli/project/``; ``__NAME__`` in them
becomes the project's name (the folder's, as the manifest would default it)."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from engine.app.cli.args import OK
from engine.core.errors import ConfigError

#: What init writes (path in the project -> file in engine/app/cli/project/).
FILES = {
    "jobs.yaml": "jobs.yaml",
    "jobs.schema.json": None,  # the manifest's schema, as `cronwright schema` prints it
    "sql/count_signups.sql": "count_signups.sql",
    "sql/migrations/0001_example_signups.sql": "0001_example_signups.sql",
    ".gitignore": "gitignore",
}
NAME = "__NAME__"
CLOUDFLARE = "__CLOUDFLARE__\n"


def schema_text() -> str:
    from engine.manifest.schema import SCHEMA_FILE

    return resources.files("engine.manifest").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def project_files(name: str, *, cloudflare: bool) -> dict[str, str]:
    """The new project's files, by path relative to its folder."""
    folder = resources.files("engine.app.cli.project")
    out = {}
    for path, source in FILES.items():
        text = schema_text() if source is None else folder.joinpath(source).read_text("utf-8")
        if path == "jobs.yaml":
            block = folder.joinpath("cloudflare.yaml").read_text("utf-8") if cloudflare else ""
            text = text.replace(CLOUDFLARE, block + "\n")
        out[path] = text.replace(NAME, name)
    return out


def cmd_init(args: argparse.Namespace) -> int:
    from engine.manifest.build import project_name

    root = Path(args.dir)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is not a folder", hint="name a new or existing folder")
    name = project_name(root.resolve().name)
    files = project_files(name, cloudflare=args.cloudflare)
    taken = [p for p in files if (root / p).exists() or (root / p).is_symlink()]
    if taken:
        listed = ", ".join(str(root / p) for p in taken)
        raise ConfigError(
            f"{listed} already exist{'s' if len(taken) == 1 else ''}; init writes no file"
            " over another",
            hint="run it in a new folder (cronwright init DIR) or move those files away",
        )
    try:
        for path, text in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x", encoding="utf-8", newline="\n") as f:
                f.write(text)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {exc.filename or root}: {exc.strerror or exc}",
            hint="check the folder's permissions",
        ) from exc
    where = "" if root.resolve() == Path.cwd().resolve() else f"  cd {args.dir}\n"
    print(f"wrote project '{name}' in {root}/: {', '.join(files)}")
    print(
        "next:\n"
        f"{where}"
        "  cronwright validate\n"
        "  cronwright generate\n"
        "  export DATABASE_URL=postgresql://USER:PASSWORD@HOST/DB\n"
        "  cronwright db migrate\n"
        "  cronwright serve"
    )
    return OK


def cmd_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return OK


def register(sub: Any) -> None:
    sp = sub.add_parser(
        "init",
        help="write a new project: jobs.yaml with an example job, its SQL and migration,"
        " the schema for editors, a .gitignore",
    )
    sp.add_argument("dir", nargs="?", default=".", help="the project's folder (default: here)")
    sp.add_argument(
        "--cloudflare",
        action="store_true",
        help="also configure the Cloudflare Worker and queue (generate then writes the"
        " Worker's files)",
    )
    sp.set_defaults(func=cmd_init)
    sub.add_parser(
        "schema", help="print the manifest's JSON Schema (for editors: > jobs.schema.json)"
    ).set_defaults(func=cmd_schema)
