"""`dispatcher`: custom actions, memberships in, REST calls out (the runtime contract)."""

from __future__ import annotations

import argparse
import os

from streams.actions.exceptions import MissingSecrets
from streams.actions.secrets import read_secrets
from streams.cli.common import (
    EXIT_FAILED,
    CommandError,
    Flags,
    add_service_flags,
    error,
    faust_datadir,
    load_rules_or_exit,
    start_service,
)
from streams.runtime.connections import WORKER_FEATURES, KafkaUnavailable, check_kafka
from streams.settings import DispatcherSettings

FLAGS: Flags = {
    "broker": ("--broker", str, "Kafka bootstrap servers (STREAMS_BROKER)"),
    "rules_dir": ("--rules-dir", str, "rules directory (STREAMS_RULES_DIR)"),
    "app_id": ("--app-id", str, "the consumer group is APP_ID-dispatcher (STREAMS_APP_ID)"),
    "dispatcher_port": (
        "--dispatcher-port",
        int,
        "port of /metrics, /health, /ready (STREAMS_DISPATCHER_PORT)",
    ),
    "partitions": (
        "--partitions",
        int,
        "partitions of topics created at start (STREAMS_PARTITIONS)",
    ),
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dispatcher = commands.add_parser(
        "dispatcher",
        help="run the dispatcher: memberships in, custom actions' REST calls out",
        description="A Faust worker: consumes the memberships topic and, for each "
        "membership of a campaign that lists actions, calls those actions' endpoints; "
        "failed calls go to the actions dead-letter topic. Refuses to start on invalid "
        "rules or a missing secret (exit 2) and exits 1 when Kafka stays unreachable for "
        "STREAMS_CONNECT_TIMEOUT seconds. Stop it with SIGTERM or Ctrl-C.",
    )
    add_service_flags(dispatcher, FLAGS)
    dispatcher.set_defaults(run=run_dispatcher)


def run_dispatcher(args: argparse.Namespace) -> int:
    settings = start_service(args, FLAGS, DispatcherSettings)
    plan = load_rules_or_exit(settings.rules_dir, settings)
    try:
        secrets = read_secrets(plan.actions.actions.values(), os.environ)
    except MissingSecrets as exc:
        for line in str(exc).splitlines():
            error(line)
        raise CommandError(f"{len(exc.missing)} secret(s) missing; nothing was run") from None
    try:
        topics = (settings.topic_memberships, settings.topic_actions_dlq)
        check_kafka(
            settings.bootstrap_servers,
            settings.connect_timeout,
            features=WORKER_FEATURES,  # a consumer group that produces, as a worker
            topics=dict.fromkeys(topics, settings.partitions),
        )
    except KafkaUnavailable as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None

    # Imported after the checks: importing Faust takes a second.
    from streams.actions.dispatcher import Stopping, build_app
    from streams.runtime.faust_app import run_worker

    stopping = Stopping(settings.dispatcher_stop_grace)
    app = build_app(settings, plan, secrets, faust_datadir(), stopping)
    # Until SIGTERM/SIGINT, then the calls under way get their grace; exits the process.
    run_worker(app, loglevel=args.log_level.upper(), before_stop=stopping.drain)
