"""Hot-spot analyses: Getis-Ord Gi*, Moran's I, kernel density, emerging hot spots.

Pure functions on numpy arrays and scipy sparse weights (no database, no HTTP, no settings),
with results as frozen dataclasses, in the manner of PySAL esda. Work in a projected (metric)
CRS. See ``docs/hotspots.md`` for the formulas, defaults and how each is checked.

Entry points
------------
* cells: :func:`hex_grid`, :func:`square_grid`, :func:`aggregate_points`
* weights: :func:`distance_band`, :func:`k_nearest`, :func:`contiguity`
* :func:`gi_star` (+ :func:`fdr_adjust`, :func:`confidence_bins`)
* :func:`optimized_gi_star`, :func:`optimized_hot_spots`,
  :func:`incremental_spatial_autocorrelation`
* :func:`moran`, :func:`local_moran`
* :func:`kernel_density`, :func:`bandwidth_rule`, :func:`write_cog`
* :func:`month_steps`, :func:`space_time_cube`, :func:`emerging_hotspots`, :func:`mann_kendall`
"""

from .cells import HexGrid, SquareGrid, aggregate_points, hex_grid, hex_size_for_area, square_grid
from .emerging import (
    CATEGORIES,
    EmergingResult,
    MannKendall,
    classify_emerging,
    emerging_hotspots,
    mann_kendall,
    month_steps,
    space_time_cube,
    space_time_weights,
)
from .gistar import CONFIDENCE_LEVELS, GiStarResult, confidence_bins, fdr_adjust, gi_star
from .kde import KdeGrid, bandwidth_rule, kernel_density, write_cog
from .moran import QUADRANTS, LocalMoranResult, MoranResult, local_moran, moran
from .optimized import (
    IncrementalResult,
    OptimizedResult,
    incremental_spatial_autocorrelation,
    locational_outliers,
    optimized_gi_star,
    optimized_hot_spots,
    value_outliers,
)
from .weights import contiguity, distance_band, k_nearest, row_standardize, set_diagonal, symmetrize

__all__ = [
    "CATEGORIES",
    "CONFIDENCE_LEVELS",
    "QUADRANTS",
    "EmergingResult",
    "GiStarResult",
    "HexGrid",
    "IncrementalResult",
    "KdeGrid",
    "LocalMoranResult",
    "MannKendall",
    "MoranResult",
    "OptimizedResult",
    "SquareGrid",
    "aggregate_points",
    "bandwidth_rule",
    "classify_emerging",
    "confidence_bins",
    "contiguity",
    "distance_band",
    "emerging_hotspots",
    "fdr_adjust",
    "gi_star",
    "hex_grid",
    "hex_size_for_area",
    "incremental_spatial_autocorrelation",
    "k_nearest",
    "kernel_density",
    "local_moran",
    "locational_outliers",
    "mann_kendall",
    "month_steps",
    "moran",
    "optimized_gi_star",
    "optimized_hot_spots",
    "row_standardize",
    "set_diagonal",
    "space_time_cube",
    "space_time_weights",
    "square_grid",
    "symmetrize",
    "value_outliers",
    "write_cog",
]
