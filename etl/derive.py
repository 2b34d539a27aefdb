"""The derived layers after a load, in one place for `pingan demo load`, `pingan etl refresh` and
the tests: monthly statistics (only what changed), the index of the months they cover up to the
newest complete month, and the newest month's hot spots. (Prepared tile shapes are the CLI's
step: ETL never imports tiles/.)"""

from __future__ import annotations

from sqlalchemy import Engine, text

from etl.density import refresh_density
from etl.hotspots import refresh_hotspots
from etl.refresh import refresh
from layers.index import IndexInputError, compute, data_start

# the newest complete month: a month still running would score on part of its data
_LAST_COMPLETE = (
    "SELECT max(period) FROM pingan.monthly_stats"
    " WHERE period < date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')"
)


def derive(engine: Engine, *, since: int | None = None, full: bool = False) -> list[str]:
    """Refresh the derived layers; one line of summary per step."""
    r = refresh(engine, since_batch=since, full=full)
    lines = [f"monthly statistics: {r.pairs:,} grid-months touched, {r.rows:,} rows, "
             f"{r.input_months} months of index inputs ({r.seconds:.1f} s)"]
    if not (r.rows or r.input_months or full):
        return lines
    with engine.connect() as conn:
        last = conn.execute(text(_LAST_COMPLETE)).scalar()
        first = data_start(conn) if last is not None else None
    if last is not None:
        try:
            idx = compute(engine, first, last=last)
            lines.append(f"safety index: {first:%Y-%m}..{last:%Y-%m} ({idx.seconds:.1f} s)")
        except IndexInputError as exc:
            lines.append(f"safety index: not computed ({exc})")
    for run in refresh_hotspots(engine):
        lines.append(f"hot spots {run.layer} {run.period:%Y-%m}: {run.n_hot} hot, {run.n_cold} cold"
                     f" cells of {run.n_cells}")
    lines.extend(run.summary() for run in refresh_density(engine))  # monthly kernel density (COGs)
    return lines
