"""Built-in column-mapping profiles, one TOML file per layer."""
