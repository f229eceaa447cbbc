"""The HTTP API: Marketo Engage's Activities endpoints over the catalog and the topic the
workers use, so that an application written against Marketo's REST API can point its base
URL here.

One module per concern: `envelope` (Marketo's response shapes and error codes), `auth`
(clients, tokens, the identity endpoint), `gate` (what every call goes through before a
route: URI and body size, token, rate and concurrency limits, `_method=GET`), `writer` (the
Kafka producer), `catalog_routes`, `ingest`, `mobile`, `history_routes` (the routes), and
`app`, which only composes them.
"""
