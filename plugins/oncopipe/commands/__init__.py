"""CLI command groups (top layer); every module here defines ``register(app: typer.Typer) -> None``.

May import: every other layer.
"""
