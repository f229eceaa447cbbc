"""`api`: the HTTP API of the runtime contract (Marketo's Activities endpoints)."""

from __future__ import annotations

import argparse
import logging

from streams.cli.common import (
    EXIT_FAILED,
    CommandError,
    Flags,
    add_service_flags,
    load_rules_or_exit,
    start_service,
)
from streams.runtime.connections import API_FEATURES, KafkaUnavailable, check_kafka
from streams.settings import ApiSettings

FLAGS: Flags = {
    "broker": ("--broker", str, "Kafka bootstrap servers (STREAMS_BROKER)"),
    "rules_dir": ("--rules-dir", str, "rules directory (STREAMS_RULES_DIR)"),
    "api_host": ("--host", str, "address to listen on (STREAMS_API_HOST)"),
    "api_port": ("--port", int, "port to listen on (STREAMS_API_PORT)"),
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = commands.add_parser(
        "api",
        help="run the HTTP API: Marketo-compatible activities in and out",
        description="Serves Marketo's Activities REST API: tokens from /identity/oauth/token "
        "for the clients of STREAMS_API_CLIENTS (or STREAMS_API_CLIENTS_FILE), the activity "
        "type catalog, Add Custom Activities (validated as the workers validate, written to "
        "the activities topic and acknowledged before the answer), the reads back, and "
        "mobile app actions; /openapi.json documents every call. Settings come from "
        "STREAMS_* variables; these flags win. It refuses to start on invalid rules or "
        "without a client (exit 2) and exits 1 when Kafka stays unreachable for "
        "STREAMS_CONNECT_TIMEOUT seconds. Stop it with SIGTERM or Ctrl-C.",
    )
    add_service_flags(api, FLAGS, "log level (default info); the access log is at info")
    api.set_defaults(run=run_api)


def run_api(args: argparse.Namespace) -> int:
    from streams.api.auth import ClientConfigError, load_clients

    settings = start_service(args, FLAGS, ApiSettings)
    from streams.api.logsafe import EscapingFilter

    for handler in logging.getLogger().handlers:  # every log line, the libraries' too
        handler.addFilter(EscapingFilter())
    plan = load_rules_or_exit(settings.rules_dir, settings)
    try:
        clients = load_clients(settings)
    except ClientConfigError as exc:
        raise CommandError(f"{exc}; nothing was started") from None
    if not clients:
        raise CommandError(
            "no API client is configured, so no call could be authenticated: set "
            "STREAMS_API_CLIENTS=id:secret[,id:secret...] or STREAMS_API_CLIENTS_FILE (one "
            "id:secret a line); nothing was started"
        )
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # wait_for_kafka logs one line per try instead
    try:
        check_kafka(
            settings.bootstrap_servers,
            settings.connect_timeout,
            features=API_FEATURES,
            topics={settings.topic_activities: settings.partitions},
        )
    except KafkaUnavailable as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    finally:
        kafka_log.setLevel(level)

    import uvicorn  # after the checks

    from streams.api.app import create_app
    from streams.api.server import protocol_with_header_timeout

    app = create_app(settings, plan, clients=clients)
    logging.getLogger(__name__).info(
        "API for %d client(s) on %s:%d, rules %s (version %s), topic %s",
        len(clients),
        settings.api_host,
        settings.api_port,
        settings.rules_dir,
        plan.rules_version,
        settings.topic_activities,
    )
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        log_level=args.log_level,
        http=protocol_with_header_timeout(settings.api_header_timeout),
        access_log=False,  # the gate logs each call without its query string (secrets)
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0
