"""Demo records written back out the way a town's grid system exports them (Chinese headers and
values, local times, coordinates in the datum of the phones that took them): sample files for
trying `pingan etl load`, and the input of the ETL tests and benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gis.datum import wgs84_to_bd09, wgs84_to_gcj02

STATE_ZH = {
    "found": "已发现",
    "assigned": "已交办",
    "handling": "处置中",
    "feedback": "已反馈",
    "verified": "已核查",
    "closed": "已销号",
}
_FORWARD = {"WGS84": None, "CGCS2000": None, "高德": wgs84_to_gcj02, "百度": wgs84_to_bd09}


def _local(s: pd.Series) -> pd.Series:
    return s.dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M:%S").where(s.notna(), "")


def hazards_export(df: pd.DataFrame, ids: pd.Series | list[str], datum: str = "WGS84") -> pd.DataFrame:
    """Hazards (columns as in ``pingan.hazards`` plus ``x``, ``y`` in CGCS2000) as a town's export
    with ids ``ids`` and coordinates in ``datum`` (WGS84, CGCS2000, 高德 or 百度)."""
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    forward = _FORWARD[datum]
    if forward is not None:
        x, y = forward(x, y)
    return pd.DataFrame(
        {
            "事件编号": list(ids),
            "标题": df["title"].to_numpy(),
            "隐患类别": "消防",
            "状态": df["state"].map(STATE_ZH).to_numpy(),
            "发现时间": _local(df["found_at"]).to_numpy(),
            "交办时间": _local(df["assigned_at"]).to_numpy(),
            "整改期限": _local(df["deadline"]).to_numpy(),
            "整改完成时间": _local(df["rectified_at"]).to_numpy(),
            "核查时间": _local(df["verified_at"]).to_numpy(),
            "销号时间": _local(df["closed_at"]).to_numpy(),
            "地址": df["address"].to_numpy(),
            "经度": np.round(x, 8),
            "纬度": np.round(y, 8),
            "坐标系": datum,
        }
    )


CATEGORY_ZH = {
    "career_failure": "事业失败",
    "family_discord": "家庭失和",
    "life_frustration": "生活失意",
    "mental_imbalance": "心态失衡",
    "abnormal_behaviour": "行为失常",
}
GRADE_ZH = {"red": "红色", "yellow": "黄色", "green": "绿色"}


def persons_export(df: pd.DataFrame) -> pd.DataFrame:
    """Five-loss persons (clear ``name``, ``id_number``, ``phone``, ``categories`` as lists,
    ``grade``, ``registered_at``, ``address`` and ``x``, ``y`` in CGCS2000) as a town's register
    exports them."""
    return pd.DataFrame(
        {
            "姓名": df["name"].tolist(),  # lists: editing the export must not edit ``df``
            "公民身份号码": df["id_number"].tolist(),
            "联系电话": df["phone"].tolist(),
            "人员类别": ["、".join(CATEGORY_ZH[c] for c in cats) for cats in df["categories"]],
            "风险等级": df["grade"].map(GRADE_ZH).to_numpy(),
            "登记时间": _local(df["registered_at"]).to_numpy(),
            "地址": df["address"].tolist(),
            "经度": np.round(df["x"].to_numpy(), 8),
            "纬度": np.round(df["y"].to_numpy(), 8),
        }
    )


def areas_export(df: pd.DataFrame, layer: str):  # noqa: ANN201 - geopandas.GeoDataFrame
    """Towns, villages or grids (``code``, ``name``, ``population``, ``households``, ``geom``) as
    a boundary file carries them (Chinese field names, statistical codes)."""
    import geopandas as gpd

    code = {"towns": "统计用区划代码", "villages": "村社代码", "grids": "网格编码"}[layer]
    name = {"towns": "镇街名称", "villages": "村社名称", "grids": "网格名称"}[layer]
    return gpd.GeoDataFrame(
        {code: df["code"].to_numpy(), name: df["name"].to_numpy(), "常住人口": df["population"].to_numpy(),
         "户数": df["households"].to_numpy()},
        geometry=gpd.GeoSeries(df["geom"].to_numpy(), crs="EPSG:4490"),
    )
