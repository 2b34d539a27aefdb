"""The safety governance index (基层平安治理指数, issue 6) as pure functions.

- :mod:`gis.index.model`: the index model from TOML, validated (indicators, weights, vetoes,
  classification, ladder and star rules);
- :mod:`gis.index.compute`: normalisation, weighted scores with each indicator's deduction,
  vetoes, ranks and change against the previous month, over a panel of places × months;
- :mod:`gis.index.classify`: the five colours by fixed bands, quantiles or natural breaks;
- :mod:`gis.index.ladder`: the accountability ladder 预警 → 抄告 → 督办 → 挂牌 per place;
- :mod:`gis.index.stars`: star-level safe village scorecards.
"""

from gis.index.classify import CLASS_KEYS, COLOURS, classify
from gis.index.compute import ComputeError, IndexResult, Panel, compute, month_index
from gis.index.ladder import Episode, LadderEvent, run_ladder
from gis.index.model import IndexModel, ModelError, load_model, parse_model
from gis.index.stars import Scorecards, StarError, scorecards

__all__ = [
    "CLASS_KEYS",
    "COLOURS",
    "ComputeError",
    "Episode",
    "IndexModel",
    "IndexResult",
    "LadderEvent",
    "ModelError",
    "Panel",
    "Scorecards",
    "StarError",
    "classify",
    "compute",
    "load_model",
    "month_index",
    "parse_model",
    "run_ladder",
    "scorecards",
]
