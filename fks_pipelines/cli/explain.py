"""`fks explain ACCOUNT [--date D]`: why an account's recommendation of a day is what it is, in text and pictures
(lib/recommend/explain.py): where it stands against its limits, the regime's next-day odds, the size path, the
latest profit split."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import click

from fks_pipelines.cli.options import json_option
from fks_pipelines.cli.types import Day
from fks_pipelines.lib.db.platform import database_urls
from fks_pipelines.lib.errors import BadInputError
from fks_pipelines.settings import Settings


@click.command()
@click.argument("account")
@click.option("--date", "day", type=Day(), help="The decision day (default: the latest with a recommendation).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the PNG pictures (default: ./explain-ACCOUNT-DATE).",
)
@click.option("--no-pictures", is_flag=True, help="Only the text.")
@json_option("One JSON object: account, date, text, and the pictures' paths.")
def explain(account: str, day: date | None, out: Path | None, no_pictures: bool, as_json: bool) -> None:
    """Explain ACCOUNT's recommendation of --date: the text here, the pictures as PNG files."""
    from fks_pipelines.lib.db import recommendations
    from fks_pipelines.lib.db.connect import connect
    from fks_pipelines.lib.recommend.explain import explain as explained

    settings = Settings.from_env()
    data_url, _ = database_urls(settings)
    with connect(data_url) as conn:
        day = day or recommendations.last_decision_day(conn)
        if day is None:
            raise BadInputError("no recommendation yet: run `fks demo` or materialize recommendations/daily")
        result = explained(conn, account, day, settings.market, list(settings.symbols), draw=not no_pictures)
    folder = out or Path(f"explain-{result.account}-{result.day}")
    paths = []
    if result.pictures:
        folder.mkdir(parents=True, exist_ok=True)
        for name, png in result.pictures.items():
            path = folder / f"{name}.png"
            path.write_bytes(png)
            paths.append(str(path))
    if as_json:
        row = {"account": result.account, "date": str(result.day), "text": result.text, "pictures": paths}
        click.echo(json.dumps(row, ensure_ascii=False))
        return
    click.echo(result.text)
    if paths:
        click.echo(f"\npictures: {', '.join(paths)}")
