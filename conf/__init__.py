"""The YAML profiles, installed as the package `vidgist_conf` (see pyproject.toml)."""
