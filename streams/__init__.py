"""Smart-campaign trigger processor: activities in, campaign memberships out."""

from streams.engine_select import select as _select

__version__ = "0.1.0"

ENGINE = _select()
"""The engine this process runs (compiled or pure, and why): chosen before any engine
module is imported, see `streams.engine_select`."""
