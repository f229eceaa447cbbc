"""Worker runtime: Faust app construction and tuning for the streaming workers."""
