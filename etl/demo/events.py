"""Hazards (风险隐患) and disputes/incidents (矛盾纠纷) with their workflow histories.

Each record gets a full timeline drawn at once (found -> assigned -> handling -> feedback ->
verified -> closed for hazards; accepted -> mediating -> resolved / transferred -> closed for
cases); the reference time then cuts it, so the state is simply the last step taken by then.
That makes old records closed and recent ones spread over the open states, and keeps every
schema CHECK (state <=> timestamps, ordering) true by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.demo import spacetime as st
from etl.demo.spacetime import DAY, HOUR, Window, choose, const, shared, where

NAN = np.nan

HAZARD_MIX = {
    "fire": 22, "gas": 8, "building": 8, "road_traffic": 10, "hazardous_chemicals": 2,
    "flood_typhoon": 8, "food_safety": 6, "public_order": 10, "construction": 10,
    "electrical": 11, "other": 5,
}
# Relative intensity by calendar month (Jan..Dec): typhoon/flood season Jul-Sep (plum rains in
# June), fire and gas in winter, electrical also with summer air-conditioning.
_H_SEASON = {
    "fire": [1.5, 1.5, 1.2, 1.0, 0.9, 0.8, 0.8, 0.8, 0.9, 1.0, 1.2, 1.5],
    "gas": [1.8, 1.7, 1.3, 1.0, 0.8, 0.7, 0.6, 0.6, 0.7, 0.9, 1.3, 1.7],
    "electrical": [1.3, 1.2, 1.0, 0.9, 1.0, 1.2, 1.5, 1.5, 1.1, 0.9, 1.0, 1.2],
    "flood_typhoon": [0.2, 0.2, 0.3, 0.5, 1.0, 2.2, 3.5, 4.0, 3.2, 1.0, 0.3, 0.2],
    "construction": [0.8, 0.4, 1.0, 1.1, 1.1, 1.0, 0.9, 0.9, 1.1, 1.2, 1.2, 1.0],
    "building": [0.9, 0.8, 1.0, 1.0, 1.2, 1.4, 1.3, 1.2, 1.0, 0.9, 0.9, 0.9],
}
# hour-of-day profiles: inspections in office hours; disputes also in the evening
_WORK_HOURS = [1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 16, 12, 8, 12, 16, 16, 14, 10, 6, 4, 3, 2, 2, 1]
_DAY_HOURS = [2, 1, 1, 1, 1, 1, 2, 5, 10, 12, 12, 10, 8, 10, 12, 12, 11, 10, 10, 10, 9, 7, 5, 3]
LEVELS = ["general", "major", "severe"]
DEADLINE_DAYS = {"general": 7, "major": 15, "severe": 30}
_LEVEL_P = {
    "hazardous_chemicals": [0.5, 0.35, 0.15], "gas": [0.7, 0.22, 0.08],
    "flood_typhoon": [0.7, 0.22, 0.08], "construction": [0.75, 0.2, 0.05],
}
# category: (places, issues, the department that handles it)
_H_TEXT = {
    "fire": ("出租房 沿街店铺 小作坊 居民楼 农贸市场 厂房",
             "消防通道堵塞 灭火器过期失效 电动车违规充电 疏散指示标志损坏 楼道堆放易燃杂物",
             "消防工作站"),
    "gas": ("餐饮店 居民楼 出租房 小吃店",
            "液化气钢瓶未装报警器 燃气管道老化 违规使用液化气 燃气软管超期使用", "应急管理办"),
    "building": ("老旧住宅 农房 厂房 围墙", "墙体开裂 外墙瓷砖脱落 违章搭建 屋面渗漏", "村镇建设办"),
    "road_traffic": ("路口 村道 学校门口 公交站", "信号灯故障 井盖缺失 交通标志缺失 路面塌陷",
                     "交警中队"),
    "hazardous_chemicals": ("化工企业 仓库 加油站",
                            "危化品超量储存 储存场所未分区 未落实双人双锁 安全标识缺失",
                            "应急管理办"),
    "flood_typhoon": ("山塘 河道 地下车库 低洼地段 边坡",
                      "排水不畅 堤岸破损 积水内涝风险 地质灾害点未设警示", "农业农村办"),
    "food_safety": ("餐饮店 学校食堂 农贸市场 小作坊", "无证经营 食品过期 后厨卫生不达标 进货台账缺失",
                    "市场监管所"),
    "public_order": ("出租房 娱乐场所 网吧 夜宵摊", "流动人口未登记 接纳未成年人 聚集喧哗 监控损坏",
                     "派出所"),
    "construction": ("工地 安置房项目 道路施工点 拆迁地块",
                     "脚手架不稳固 未设置围挡 高处作业无防护 塔吊未检验", "村镇建设办"),
    "electrical": ("出租房 沿街店铺 厂房 老旧小区", "私拉乱接电线 配电箱老化 电线裸露 充电桩无防护",
                   "应急管理办"),
    "other": ("公共场所 小区 河岸 公园", "护栏缺失 违规种植养殖 广告牌松动 窨井盖破损",
              "综合行政执法中队"),
}
_LOCAL_UNITS = {"派出所", "交警中队", "市场监管所", "消防工作站"}  # named '梧田派出所', not '梧田街道…'
_INCIDENT = {"theft": 25, "fraud": 20, "fight": 25, "public_order": 20, "traffic_accident": 5,
             "other": 5}
_DISPUTE = {
    "neighbour": 20, "marriage_family": 15, "labour": 15, "property_management": 10, "land": 6,
    "consumer": 9, "construction": 6, "debt": 10, "medical": 3, "traffic_accident": 4, "other": 2,
}
_INCIDENT_SHARE = 0.13  # hot spots of fights and disorder bring incidents to ~15 %
_C_TEXT = {
    "neighbour": "邻里噪音纠纷 漏水纠纷 通道占用纠纷 违建遮光纠纷",
    "marriage_family": "婚姻家庭纠纷 赡养纠纷 继承纠纷 家庭矛盾",
    "labour": "拖欠工资纠纷 工伤赔偿纠纷 劳动合同纠纷 农民工欠薪",
    "land": "宅基地边界纠纷 土地承包纠纷 山林权属纠纷",
    "property_management": "物业费纠纷 停车位纠纷 电梯维修纠纷",
    "traffic_accident": "交通事故赔偿纠纷 电动车碰撞纠纷",
    "medical": "医疗纠纷 诊所医患纠纷",
    "consumer": "消费维权纠纷 预付卡退费纠纷 装修质量纠纷",
    "construction": "工程款纠纷 施工扰民纠纷 装修损邻纠纷",
    "debt": "民间借贷纠纷 货款纠纷 债务纠纷",
    "theft": "电动车被盗 入室盗窃 店铺失窃",
    "fraud": "电信网络诈骗 刷单诈骗 冒充客服诈骗",
    "fight": "酒后斗殴 口角引发打架 夜宵摊斗殴",
    "public_order": "聚众滋事 醉酒滋扰 噪声扰民",
    "other": "其他矛盾纠纷 信访诉求",
}
_TRANSFER_TO = {
    "labour": "区劳动人事争议仲裁院", "traffic_accident": "公安瓯海分局交警大队",
    "medical": "区医疗纠纷人民调解委员会", "consumer": "区市场监督管理局",
    "debt": "瓯海区人民法院", "marriage_family": "瓯海区人民法院",
    "land": "区自然资源和规划分局", "construction": "区住房和城乡建设局",
    "theft": "公安瓯海分局", "fraud": "公安瓯海分局", "fight": "公安瓯海分局",
    "public_order": "公安瓯海分局",
}
_CHANNELS = ["grid_worker", "walk_in", "hotline", "police", "petition", "online"]
_CHANNEL_P = {"dispute": [0.35, 0.22, 0.18, 0.08, 0.05, 0.12],
              "incident": [0.15, 0.05, 0.15, 0.55, 0.02, 0.08]}
_RES_LEVELS = ["grid", "village", "town", "district"]
# ~90 % of disputes are settled at town level or below (the 'Fengqiao experience' target)
_RES_P = {"dispute": [0.35, 0.30, 0.25, 0.10], "incident": [0.05, 0.15, 0.45, 0.35]}


def _words(rng, table: dict, key: np.ndarray, field: int | None = None) -> np.ndarray:
    """Per record, a random word from ``table[key]`` (a space-separated list)."""
    out = const(None, len(key))
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        out[idx] = choose(rng, (table[k] if field is None else table[k][field]).split(), len(idx))
    return out


def _by_group(rng, key: np.ndarray, options: list[str], probs: dict, default) -> np.ndarray:
    """Per record, a pick from ``options`` with probabilities depending on ``key``."""
    out = const(None, len(key))
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        out[idx] = choose(rng, options, len(idx), probs.get(k, default))
    return out


def _upto(secs: np.ndarray, end: int) -> np.ndarray:
    """Times after the reference time have not happened yet (NaN)."""
    return np.where(secs <= end, secs, NAN)


def _state(cut: dict[str, np.ndarray], steps: list[tuple[str, str]], first: str) -> np.ndarray:
    """The state after the last step taken (steps in workflow order)."""
    state = const(first, len(next(iter(cut.values()))))
    for step, name in steps:
        state[np.isfinite(cut[step])] = name
    return state


def hazard_season(category: str, days: np.ndarray) -> np.ndarray:
    """Relative intensity of a hazard category on each day."""
    months = np.asarray(_H_SEASON.get(category, [1.0] * 12))
    return months[st.local_month(days) - 1]


def _hazard_timeline(rng, found: np.ndarray, level: np.ndarray) -> dict[str, np.ndarray]:
    """Full (uncut) hazard timelines in epoch seconds; NaN where a step never happens."""
    n = len(found)
    allowed = np.select([level == "major", level == "severe"], [15, 30], 7) * DAY
    assigned = found + np.clip(rng.lognormal(np.log(6 * HOUR), 1.0, n), 600, 2 * DAY).round()
    late = rng.random(n) < 0.10  # one in ten is rectified after the deadline
    frac = np.where(late, rng.uniform(1.02, 1.6, n), rng.uniform(0.15, 0.95, n))
    first_fix = assigned + (frac * allowed).round()
    handling = assigned + (rng.uniform(0.05, 0.25, n) * (first_fix - assigned)).round()
    stuck = rng.random(n) < 0.008  # never rectified: these become long-overdue hazards
    rework = (rng.random(n) < 0.04) & ~stuck  # the check fails: back to handling
    back = (first_fix + rng.uniform(0.5, 2, n) * DAY).round()
    rectified = np.where(rework, back + (rng.uniform(1, 5, n) * DAY).round(), first_fix)
    rectified[stuck] = NAN
    verified = rectified + rng.uniform(2 * HOUR, 4 * DAY, n).round()
    return {
        "assigned": assigned, "deadline": assigned + allowed, "handling": handling,
        "feedback1": np.where(rework, first_fix, NAN), "handling2": np.where(rework, back, NAN),
        "rectified": rectified, "verified": verified,
        "closed": verified + rng.uniform(HOUR, 2 * DAY, n).round(),
    }


def _hazard_cut(t: dict[str, np.ndarray], end: int) -> tuple[np.ndarray, dict]:
    """Cut the timelines at ``end``: the state and the timestamps the table holds."""
    cut = {k: _upto(v, end) for k, v in t.items() if k != "deadline"}
    state = _state(cut, [("assigned", "assigned"), ("handling", "handling"),
                         ("feedback1", "feedback"), ("handling2", "handling"),
                         ("rectified", "feedback"), ("verified", "verified"),
                         ("closed", "closed")], "found")
    done = np.isin(state, ["feedback", "verified", "closed"])
    latest = np.where(np.isfinite(cut["rectified"]), cut["rectified"], cut["feedback1"])
    cut["rectified_col"] = np.where(done, latest, NAN)  # a failed check clears it again
    cut["deadline"] = np.where(np.isfinite(cut["assigned"]), t["deadline"], NAN)
    return state, cut


def hazards(admin, lab, worker_name, window: Window, hotspots, seed: int, scale: int):
    """The hazards frame and its events (30,000 x scale hazards)."""
    rng = np.random.default_rng([seed, scale, 201])
    sp = st.spread(admin, rng, 30_000 * scale, "hazards", hotspots, HAZARD_MIX, window,
                   hazard_season, _WORK_HOURS)
    n, cat = len(sp.secs), sp.category
    level = _by_group(rng, cat, LEVELS, _LEVEL_P, [0.82, 0.15, 0.03])
    found = sp.secs.astype(float)
    state, cut = _hazard_cut(_hazard_timeline(rng, found, level), window.end)
    l_ = lab.iloc[sp.grid_idx]
    town, village = l_["town"].to_numpy(object), l_["village"].to_numpy(object)
    place, issue = _words(rng, _H_TEXT, cat, 0), _words(rng, _H_TEXT, cat, 1)
    dept = st.lookup(cat, {c: text[2] for c, text in _H_TEXT.items()})
    local = np.isin(dept, list(_LOCAL_UNITS))
    assigned_to = shared(where(local, l_["town_short"].to_numpy(object), town) + dept)
    reporter = choose(rng, ["grid_worker", "inspection", "public", "hotline"], n,
                      [0.55, 0.2, 0.15, 0.1])
    worker = shared("网格员" + worker_name[sp.grid_idx])
    found_by = where(reporter == "grid_worker", worker, where(
        reporter == "inspection", shared(town + "安全检查组"),
        where(reporter == "public", "群众", "12345热线")))
    title = town + village + place + issue
    level_cn = where(level == "general", "一般", where(level == "major", "较大", "重大"))
    ids = st.source_ids("hazard", n)
    frame = pd.DataFrame({
        "code": st.seq_codes("YH", sp.secs), "category": cat, "level": level, "title": title,
        "description": found_by + "报告：" + village + place + issue + "，" + level_cn + "隐患",
        "address": st.addresses(lab, sp.grid_idx, rng), "reporter_kind": reporter,
        "assigned_to": where(np.isfinite(cut["assigned"]), assigned_to, None), "state": state,
        "found_at": st.local_times(found), "assigned_at": st.local_times(cut["assigned"]),
        "deadline": st.local_times(cut["deadline"]),
        "rectified_at": st.local_times(cut["rectified_col"]),
        "verified_at": st.local_times(cut["verified"]), "closed_at": st.local_times(cut["closed"]),
        **st.located(lab, sp.grid_idx, sp.lon, sp.lat), "source": "demo", "source_id": ids,
    })
    centre = shared(town + "社会治理中心")
    days = st.lookup(level, {k: str(v) for k, v in DEADLINE_DAYS.items()})
    events = st.steps_to_events(ids, [
        (None, "found", found, found_by, title),
        ("found", "assigned", cut["assigned"], centre, "交办" + assigned_to + "，限期" + days + "天"),
        ("assigned", "handling", cut["handling"], assigned_to, "已接单，开始整改"),
        ("handling", "feedback", cut["feedback1"], assigned_to, "整改完成，申请核查"),
        ("feedback", "handling", cut["handling2"], worker, "核查未通过，退回整改"),
        ("handling", "feedback", cut["rectified"], assigned_to, "整改完成，申请核查"),
        ("feedback", "verified", cut["verified"], worker, "现场核查通过"),
        ("verified", "closed", cut["closed"], centre, "销号"),
    ], window.end)
    return st.compact(frame), events.rename(columns={"parent": "hazard_source_id"})


def case_season(category: str, days: np.ndarray) -> np.ndarray:
    """Relative intensity of a case category on each day (Spring Festival effects)."""
    if category == "labour":  # wage arrears come to a head in the weeks before 春节
        return 1 + 3.0 * st.festival_bump(days, -18, 12)
    if category == "debt":  # accounts are settled before the new year
        return 1 + 1.5 * st.festival_bump(days, -10, 12)
    if category in ("marriage_family", "neighbour"):  # families together, tempers short
        return 1 + 1.2 * st.festival_bump(days, 0, 15)
    if category == "construction":  # sites stop over the holiday
        return 1 - 0.5 * st.festival_bump(days, 0, 10)
    if category in ("fight", "public_order"):  # summer nights out
        return np.where(np.isin(st.local_month(days), [6, 7, 8]), 1.3, 1.0)
    return np.ones(len(days))


def _case_mix() -> dict[str, float]:
    """Category shares over both kinds."""
    mix = {k: (1 - _INCIDENT_SHARE) * v / sum(_DISPUTE.values()) for k, v in _DISPUTE.items()}
    for k, v in _INCIDENT.items():
        mix[k] = mix.get(k, 0.0) + _INCIDENT_SHARE * v / sum(_INCIDENT.values())
    return mix


def _case_kind(rng, cat: np.ndarray) -> np.ndarray:
    """Kind from category; categories found in both kinds split by their shares."""
    mix, total = _case_mix(), sum(_INCIDENT.values())
    p_inc = {c: _INCIDENT_SHARE * _INCIDENT.get(c, 0) / total / mix[c] for c in mix}
    p = st.lookup(cat, p_inc).astype(float)
    return where(rng.random(len(cat)) < p, "incident", "dispute")


def _case_timeline(rng, acc, kind, cat, simple) -> dict[str, np.ndarray]:
    """Full (uncut) case timelines in epoch seconds; NaN where a step never happens."""
    n = len(acc)
    p_transfer = np.where(kind == "incident", 0.55, np.where(cat == "labour", 0.2, 0.07))
    transfer = rng.random(n) < p_transfer
    direct = transfer & (rng.random(n) < 0.5)  # sent on at once, without local mediation
    delay = np.clip(rng.lognormal(np.log(8 * HOUR), 1.0, n), 600, 3 * DAY)
    med = np.where(direct, NAN, acc + delay)
    trans = np.where(direct, acc + rng.uniform(HOUR, 2 * DAY, n), med + rng.uniform(1, 10, n) * DAY)
    trans = np.where(transfer, trans, NAN)
    dur = rng.lognormal(np.log(np.where(simple, 3.0, 5.0) * DAY), 0.9, n)
    stuck = rng.random(n) < 0.006  # mediation that never succeeds: long overdue
    res = np.where(transfer | stuck, NAN, med + dur)
    after = np.where(transfer, rng.uniform(3, 30, n), rng.uniform(1, 7, n)) * DAY
    never = transfer & (rng.random(n) < 0.2)  # the receiving body never reports back
    clo = np.where(never, NAN, np.where(transfer, trans, res) + after)
    steps = {"mediating": med, "transferred": trans, "resolved": res, "closed": clo}
    return {k: np.round(v) for k, v in steps.items()}


def cases(admin, lab, worker_name, window: Window, hotspots, seed: int, scale: int):
    """The cases frame and its events (10,000 x scale cases)."""
    rng = np.random.default_rng([seed, scale, 202])
    sp = st.spread(admin, rng, 10_000 * scale, "cases", hotspots, _case_mix(), window,
                   case_season, _DAY_HOURS)
    n, cat = len(sp.secs), sp.category
    kind = _case_kind(rng, cat)
    parties = np.where(rng.random(n) < 0.7, 2, rng.integers(1, 7, n))
    group = (cat == "labour") & (rng.random(n) < 0.3)  # collective wage claims
    parties = np.where(group, rng.integers(5, 40, n), parties)
    simple = np.isin(cat, ["neighbour", "consumer", "property_management"]) & (parties <= 2)
    simple &= rng.random(n) < 0.5
    acc = sp.secs.astype(float)
    cut = {k: _upto(v, window.end) for k, v in _case_timeline(rng, acc, kind, cat, simple).items()}
    state = _state(cut, [(s, s) for s in ("mediating", "transferred", "resolved", "closed")],
                   "accepted")
    level = _by_group(rng, kind, _RES_LEVELS, _RES_P, None)
    channel = _by_group(rng, kind, _CHANNELS, _CHANNEL_P, None)
    l_ = lab.iloc[sp.grid_idx]
    town, village = l_["town"].to_numpy(object), l_["village"].to_numpy(object)
    worker = shared("网格员" + worker_name[sp.grid_idx])
    transfer_to = st.lookup(cat, _TRANSFER_TO, "区矛盾纠纷调处化解中心")
    title = town + village + _words(rng, _C_TEXT, cat)
    ids = st.source_ids("case", n)
    resolved, transferred = np.isfinite(cut["resolved"]), np.isfinite(cut["transferred"])
    frame = pd.DataFrame({
        "code": st.seq_codes("JF", sp.secs), "kind": kind, "category": cat, "title": title,
        "description": title + "，当事人" + parties.astype(str).astype(object) + "方",
        "address": st.addresses(lab, sp.grid_idx, rng), "channel": channel,
        "parties": parties, "state": state, "accepted_at": st.local_times(acc),
        "deadline": st.local_times(acc + np.where(simple, 15, 30) * DAY),
        "mediating_at": st.local_times(cut["mediating"]),
        "resolved_at": st.local_times(cut["resolved"]),
        "transferred_at": st.local_times(cut["transferred"]),
        "closed_at": st.local_times(cut["closed"]),
        "resolution_level": where(resolved, level, None),
        "transferred_to": where(transferred, transfer_to, None),
        **st.located(lab, sp.grid_idx, sp.lon, sp.lat), "source": "demo", "source_id": ids,
    })
    centre = shared(town + "社会治理中心")
    mediator = where(level == "grid", worker, where(
        level == "village", shared(village + "调委会"),
        where(level == "town", shared(town + "人民调解委员会"), "瓯海区矛调中心")))
    events = st.steps_to_events(ids, [
        (None, "accepted", acc, where(channel == "grid_worker", worker, shared(town + "矛调中心")),
         title),
        ("accepted", "mediating", cut["mediating"], mediator, "启动调解"),
        (where(np.isfinite(cut["mediating"]), "mediating", "accepted"), "transferred",
         cut["transferred"], centre, shared("移交" + transfer_to)),
        ("mediating", "resolved", cut["resolved"], mediator, "调解成功，达成协议"),
        (where(resolved, "resolved", "transferred"), "closed", cut["closed"], centre,
         where(resolved, "回访满意，结案", "接收单位办结，结案")),
    ], window.end)
    return st.compact(frame), events.rename(columns={"parent": "case_source_id"})
