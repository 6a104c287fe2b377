"""wrangler.toml: the Worker, its cron triggers, and per target the bindings wrangler
does not inherit into ``[env.*]``."""

from __future__ import annotations

import json

from engine.core.model import ConsumerType, Environment, Manifest


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def flag(enabled: bool) -> str:
    return "true" if enabled else "false"


def _bindings(manifest: Manifest, env: Environment | None, crons: str) -> list[str]:
    """Each target's own triggers, and everything wrangler does not inherit into [env.*]:
    vars, queues, R2, Analytics Engine."""
    prefix = f"env.{env.name}." if env else ""
    m = manifest.for_environment(env.name if env else None)
    q, w = m.queue, m.worker
    vars_: dict[str, str] = {**w.vars, w.cron_flag: flag(w.cron_enabled)}
    out = [f"[{prefix}triggers]", f"crons = {crons}", "", f"[{prefix}vars]"]
    out += [f"{k} = {_toml_str(vars_[k])}" for k in sorted(vars_)]
    out += [
        "",
        f"[[{prefix}queues.producers]]",
        f"binding = {_toml_str(q.binding)}",
        f"queue = {_toml_str(q.name)}",
    ]
    c = q.consumer
    if c.type is ConsumerType.WORKER:
        out += [
            "",
            f"[[{prefix}queues.consumers]]",
            f"queue = {_toml_str(q.name)}",
            f"max_batch_size = {c.max_batch_size}",
            f"max_batch_timeout = {c.max_batch_timeout_seconds}",
            f"max_retries = {m.consumer_max_retries}",
            f"retry_delay = {c.retry_delay_seconds}",
            f"dead_letter_queue = {_toml_str(q.dead_letter_queue)}",
        ]
        if c.max_concurrency is not None:
            out.append(f"max_concurrency = {c.max_concurrency}")
    if m.bucket:
        b = m.bucket
        out += [
            "",
            f"[[{prefix}r2_buckets]]",
            f"binding = {_toml_str(b.binding)}",
            f"bucket_name = {_toml_str(b.bucket_name)}",
        ]
        if b.preview_bucket_name:
            out.append(f"preview_bucket_name = {_toml_str(b.preview_bucket_name)}")
    if m.dataset:
        d = m.dataset
        out += [
            "",
            f"[[{prefix}analytics_engine_datasets]]",
            f"binding = {_toml_str(d.binding)}",
            f"dataset = {_toml_str(d.dataset)}",
        ]
    return out


def wrangler_toml(manifest: Manifest, triggers: list[str], header: str) -> str:
    """With environments, each one deploys its own Worker with the crons and the top level
    carries none (it is for ``wrangler dev``): two Workers firing the same triggers into one
    queue would send every slot twice. Validation gives each environment its own queue."""
    w = manifest.worker
    crons = "[" + ", ".join(_toml_str(t) for t in triggers) + "]"
    lines = [
        "# " + header,
        f"name = {_toml_str(w.name)}",
        f"main = {_toml_str(w.main)}",
        f"compatibility_date = {_toml_str(w.compatibility_date)}",
        "",
    ]
    lines += _bindings(manifest, None, "[]" if manifest.environments else crons)
    for env in manifest.environments:
        lines += ["", f"[env.{env.name}]"]
        lines += _bindings(manifest, env, crons)
    return "\n".join(lines) + "\n"
