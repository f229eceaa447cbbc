"""`worker`: the streaming worker of the runtime contract."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial

from streams import ENGINE
from streams.cli.common import (
    EXIT_FAILED,
    CommandError,
    Flags,
    add_service_flags,
    faust_datadir,
    load_rules_or_exit,
    start_service,
)
from streams.gc_tuning import WORKER_YOUNG, tune_gc
from streams.runtime.connections import WORKER_FEATURES, KafkaUnavailable, check_kafka
from streams.settings import WorkerSettings
from streams.state.redis_client import RedisUnavailable, wait_for_redis

FLAGS: Flags = {
    "broker": ("--broker", str, "Kafka bootstrap servers (STREAMS_BROKER)"),
    "redis_url": ("--redis-url", str, "Redis URL (STREAMS_REDIS_URL)"),
    "rules_dir": ("--rules-dir", str, "rules directory (STREAMS_RULES_DIR)"),
    "app_id": ("--app-id", str, "consumer group and Redis key prefix (STREAMS_APP_ID)"),
    "web_port": ("--web-port", int, "port of /metrics, /health, /ready (STREAMS_WEB_PORT)"),
    "partitions": (
        "--partitions",
        int,
        "partitions of topics created at start (STREAMS_PARTITIONS)",
    ),
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker",
        help="run a streaming worker: activities in, memberships out",
        description="A Faust worker: consumes the activities topic, evaluates the campaigns "
        "of the rules directory with per-lead state in Redis, and writes membership events "
        "and dead letters. Settings come from STREAMS_* variables; these flags win. It "
        "refuses to start on invalid rules (exit 2) and exits 1 when Kafka or Redis stay "
        "unreachable for STREAMS_CONNECT_TIMEOUT seconds. Stop it with SIGTERM or Ctrl-C.",
    )
    add_service_flags(worker, FLAGS)
    worker.set_defaults(run=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    settings = start_service(args, FLAGS, WorkerSettings)
    logging.getLogger("streams.worker").info("%s", ENGINE.describe())
    plan = load_rules_or_exit(settings.rules_dir, settings)
    try:
        topics = (settings.topic_activities, settings.topic_memberships, settings.topic_dlq)
        check_kafka(
            settings.bootstrap_servers,
            settings.connect_timeout,
            features=WORKER_FEATURES,
            topics=dict.fromkeys(topics, settings.partitions),
        )
        wait_for_redis(settings.redis_url, settings.connect_timeout, cluster=settings.redis_cluster)
    except (KafkaUnavailable, RedisUnavailable) as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None

    # Imported after the checks: importing Faust takes a second.
    from streams.runtime.faust_app import run_worker
    from streams.runtime.revocation import settle_and_commit_before_stop
    from streams.runtime.worker import build_app

    app = build_app(settings, plan, faust_datadir())
    tune_gc(young=WORKER_YOUNG)
    sys.setswitchinterval(settings.switch_interval)
    # Until SIGTERM/SIGINT; exits the process. The batches in flight are delivered, acked
    # and committed first (revocation.py), so the next owner does not send them again.
    run_worker(
        app,
        loglevel=args.log_level.upper(),
        before_stop=partial(settle_and_commit_before_stop, app),
    )
