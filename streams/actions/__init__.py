"""Custom actions (spec: actions.md): campaigns call third-party REST endpoints.

- `definitions`: the action and endpoint files as written (shape only, pure pydantic);
- `durations`, `variables`: the small languages of those files;
- `validation`: their meaning, checked against the catalog and the campaigns using them;
- `compiled`: validated actions ready for `payload` (pure: template + event -> request);
- `secrets`, `auth`, `limits`, `caller`: the edge that makes HTTP calls;
- `dispatcher`, `metrics`: the Faust app of `python -m streams dispatcher`;
- `frozen`: what a new rules version may not change in an action in use.

This `__init__` imports nothing, so that the engine can load definitions without aiohttp.
"""
