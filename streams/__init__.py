"""Smart-campaign trigger processor: activities in, campaign memberships out."""

__version__ = "0.1.0"
