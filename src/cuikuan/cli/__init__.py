"""The `cuikuan` command: thin Typer commands that call services and print tables or JSON."""
