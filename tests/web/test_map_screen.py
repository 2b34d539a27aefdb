"""The command-centre map screen in a real headless Chromium (Debian's chromium, driven by
Playwright with executable_path=/usr/bin/chromium): it loads with no console error and no
request leaving 127.0.0.1; the choropleth has the right colour at known villages; the slider
changes the month; the warning list shows the database's open ladder items and a click flies to
the place and opens its details (score, indicator breakdown, open warnings); the KPI panels equal
the API's numbers; a hazard click shows its state history; town and village names are drawn
with glyphs served by the app; the page reloads only the source whose version was bumped; a town
user sees only its town. Screenshots of each state go to test-artifacts/ (look at them)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from layers import versions
from tests.web.conftest import Watched, api

# where on the screen the first drawn village is (the mean of its outer ring's vertices)
CENTRE_OF_A_VILLAGE = """() => {
  const m = window.pinganMap, f = m.queryRenderedFeatures({layers: ['index-fill']})[0];
  const c = m.getCanvas().getBoundingClientRect();
  const g = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
  const p = m.project(g.reduce((a, b) => [a[0] + b[0] / g.length, a[1] + b[1] / g.length], [0, 0]));
  return {x: c.left + p.x, y: c.top + p.y};
}"""
# the screen position of a drawn hazard point with a code (detail zoom), nearest the centre
A_HAZARD = """() => {
  const m = window.pinganMap, c = m.getCanvas().getBoundingClientRect();
  const w = c.width / 2, h = c.height / 2;
  const fs = m.queryRenderedFeatures({layers: ['hazards']}).filter(f => f.properties.code)
    .map(f => ({code: f.properties.code, p: m.project(f.geometry.coordinates)}))
    .filter(f => f.p.x > 40 && f.p.y > 40 && f.p.x < c.width - 40 && f.p.y < c.height - 40)
    .sort((a, b) => Math.hypot(a.p.x - w, a.p.y - h) - Math.hypot(b.p.x - w, b.p.y - h));
  return fs.length ? {code: fs[0].code, x: c.left + fs[0].p.x, y: c.top + fs[0].p.y} : null;
}"""


def test_command_screen(browser, server: str, users, district: Engine) -> None:
    w = Watched(browser, server, users["command"])
    w.settle()
    w.shot("command-1920")
    w.clean()
    period = w.page.get_attribute("body", "data-period")
    with district.connect() as c:
        truth = dict(c.execute(text("SELECT code, colour_hex FROM pingan.index_villages WHERE period = :p"),
                               {"p": period}).all())
        counts = dict(c.execute(text("SELECT class, count(*) FROM pingan.index_villages"
                                     " WHERE period = :p GROUP BY 1"), {"p": period}).all())
        open_items = c.execute(text("SELECT id, deadline < current_date FROM pingan.index_warnings"
                                    " WHERE status = 'open'")).all()
    shown = w.rendered("index-fill")
    assert len({f["code"] for f in shown}) > 50
    assert all(f["colour_hex"] == truth[f["code"]] and f["period"] == period for f in shown)
    for cls, n in counts.items():  # the legend counts the month's villages per colour
        assert w.page.text_content(f".legend-row[data-class={cls}] strong") == str(n)

    # the warning list: every open ladder item of the database, the overdue ones flagged
    items = w.page.eval_on_selector_all(
        "#warnings li.warn", "els => els.map(e => [+e.dataset.id, e.classList.contains('overdue')])")
    assert sorted(map(tuple, items)) == sorted((i, bool(o)) for i, o in open_items)
    # the KPI panels show the API's numbers (which tests/web/test_dashboard_api.py checks against SQL)
    k = api(server, users["command"], f"/api/kpis?period={period[:7]}")[1]
    assert w.page.text_content("#kpi-hazards-found") == str(k["hazards"]["found"])
    assert w.page.text_content("#kpi-hazards-rectified") == str(k["hazards"]["rectified"])
    assert w.page.text_content("#kpi-overdue") == str(k["overdue"]["total"])
    assert w.page.text_content("#kpi-grassroots") == f"{100 * k['disputes']['rate']:.1f}%"
    assert w.page.text_content("#kpi-red-orange") == str(k["villages"]["red_orange"])
    assert w.page.text_content("#kpi-persons-red") == str(k["persons"]["red"])
    # the layers panel lists what the registry serves to this role (patrol routes etc. included)
    listed = set(w.page.eval_on_selector_all("#layers input[data-layer]",
                                             "els => els.map(e => e.dataset.layer)"))
    collections = {c["id"] for c in api(server, users["command"], "/ogc/collections")[1]["collections"]}
    drawn_elsewhere = {"towns", "villages", "index-villages"}  # the base and the choropleth
    assert {c for c in listed if not c.startswith("density-")} == collections - drawn_elsewhere

    # the slider changes the month, and the map follows
    w.page.fill("#period", "0")
    w.page.dispatch_event("#period", "input")
    w.settle()
    first = w.page.get_attribute("body", "data-period")
    assert first < period
    assert {f["period"] for f in w.rendered("index-fill")} == {first}
    w.page.wait_for_selector(f"#kpis[data-period='{first[:7]}']")
    w.shot("command-first-month")

    # a click on a village opens its details: score, indicator breakdown, open warnings
    box = w.page.evaluate(CENTRE_OF_A_VILLAGE)
    w.page.mouse.click(box["x"], box["y"])
    w.page.wait_for_selector("#details:not([hidden]) #detail-score", timeout=20_000)
    w.page.wait_for_selector("#details #detail-indicators tr", timeout=20_000)
    code = w.page.get_attribute("#details", "data-code")
    with district.connect() as c:
        score = c.execute(text("SELECT score FROM pingan.index_villages WHERE code = :c AND period = :p"),
                          {"c": code, "p": first}).scalar_one()
    assert w.page.text_content("#detail-score") == f"{score:.2f}"
    w.shot("command-details")
    w.clean()
    w.context.close()


def test_a_warning_click_flies_to_the_place_and_opens_it(browser, server: str, users,
                                                         district: Engine) -> None:
    w = Watched(browser, server, users["command"])
    first = w.page.locator("#warnings li.warn").first
    code, level = first.get_attribute("data-code"), first.get_attribute("data-level")
    first.click()
    w.page.wait_for_selector(f"#details:not([hidden])[data-code='{code}'] #detail-score", timeout=20_000)
    w.page.wait_for_function("() => !window.pinganMap.isMoving()", timeout=20_000)
    w.settle()
    table = "villages" if level == "village" else "towns"
    with district.connect() as c:
        x, y = c.execute(text(f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p"  # noqa: S608
                              f" FROM pingan.{table} WHERE code = :c) s"), {"c": code}).one()
    # flown to: the place is in view (left of the details card) and the map zoomed in on it
    shown = w.page.evaluate(f"""() => {{ const m = window.pinganMap, p = m.project([{x}, {y}]);
        const c = m.getCanvas().getBoundingClientRect();
        const d = document.getElementById('details').getBoundingClientRect();
        return {{zoom: m.getZoom(),
                 inside: p.x > 0 && p.y > 0 && p.x < d.left - c.left && p.y < c.height}}; }}""")
    assert shown["inside"], "the map did not fly to the warned place"
    assert shown["zoom"] > 11.5
    assert w.page.locator("#detail-warnings li").count() >= 1  # its open ladder items
    w.shot("warning-click")
    w.clean()
    w.context.close()


def test_a_hazard_click_shows_its_state_history(browser, server: str, users, district: Engine) -> None:
    w = Watched(browser, server, users["command"])
    w.page.check("input[data-layer=hazards]")
    with district.connect() as c:
        lon, lat = c.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM pingan.hazards WHERE state = 'closed'"
                                  " ORDER BY id LIMIT 1")).one()
    w.page.evaluate(f"() => window.pinganMap.jumpTo({{center: [{lon}, {lat}], zoom: 15.5}})")
    w.settle()
    hit = w.page.evaluate(A_HAZARD)
    assert hit, "no hazard drawn at detail zoom"
    w.page.mouse.click(hit["x"], hit["y"])
    w.page.wait_for_selector("#details:not([hidden]) #detail-flow", timeout=20_000)
    code = w.page.get_attribute("#details", "data-code")
    with district.connect() as c:
        state, reached = c.execute(text(
            "SELECT h.state, array_agg(DISTINCT e.to_state) FROM pingan.hazards h"
            " JOIN pingan.hazard_events e ON e.hazard_id = h.id WHERE h.code = :c GROUP BY h.state"),
            {"c": code}).one()
    done = w.page.eval_on_selector_all("#detail-flow li.done", "els => els.map(e => e.dataset.state)")
    assert set(done) == set(reached) and "found" in done
    assert w.page.get_attribute("#detail-flow li.current", "data-state") == state
    assert w.page.locator("#detail-events tr").count() >= len(reached)
    w.shot("hazard-history")
    # the legend by state, drawn beside the toggle
    assert w.page.locator("[data-legend=hazards] .state").count() == 6
    w.clean()
    w.context.close()


def test_labels_are_drawn_with_local_glyphs(browser, server: str, users, district: Engine) -> None:
    w = Watched(browser, server, users["command"])
    w.settle()
    with district.connect() as c:
        towns = set(c.execute(text("SELECT name FROM pingan.towns")).scalars())
        villages = set(c.execute(text("SELECT name FROM pingan.villages")).scalars())
    drawn = {f["name"] for f in w.rendered("town-labels")}
    assert len(drawn) >= len(towns) // 2 and drawn <= towns
    lon, lat = w.page.evaluate("() => window.pinganMap.getCenter().toArray()")
    w.page.evaluate(f"() => window.pinganMap.jumpTo({{center: [{lon}, {lat}], zoom: 13}})")
    w.settle()
    names = [f["name"] for f in w.rendered("village-labels")]
    assert len(set(names)) >= 5 and set(names) <= villages
    assert len(names) == len(set(names)) or len(names) - len(set(names)) <= 2  # one label per village
    # the scores (digits) need the glyph PBF of 0-255, which the app serves (built by npm ci)
    assert any("/static/glyphs/" in u and u.endswith("/0-255.pbf") for u in w.requests)
    # a label with Chinese punctuation (MapLibre draws only ideographs locally): the page asks
    # for the punctuation's glyph ranges, which the app serves built from the CJK font
    ranges = ("/12288-12543.pbf", "/65280-65535.pbf")
    assert not any(u.endswith(ranges) for u in w.requests)
    w.page.evaluate("""(c) => {
      const m = window.pinganMap;
      m.addSource("punct", {type: "geojson", data: {type: "Feature", properties: {},
        geometry: {type: "Point", coordinates: c}}});
      m.addLayer({id: "punct", type: "symbol", source: "punct", layout: {
        "text-field": "梧田街道（试点）、《平安》！", "text-font": ["Noto Sans Regular"],
        "text-size": 28, "text-allow-overlap": true}, paint: {"text-color": "#c00"}});
    }""", [lon, lat])
    w.settle()
    asked = [u for u in w.requests if u.endswith(ranges)]
    assert {u[u.rindex("/"):] for u in asked} == set(ranges), asked
    sizes = w.page.evaluate("(us) => Promise.all(us.map(u => fetch(u).then(r => r.arrayBuffer())"
                            ".then(b => b.byteLength)))", asked)
    assert min(sizes) > 4_000, sizes  # glyphs (8 KB and 47 KB), not the empty answer or Latin leftovers
    assert w.rendered("punct") != []
    w.shot("labels-z13")
    w.clean()
    w.context.close()


def test_the_page_reloads_only_what_an_etl_load_changed(browser, server: str, users,
                                                        district: Engine) -> None:
    w = Watched(browser, server, users["command"], query="?refresh=1")
    w.page.check("input[data-layer=hazards]")
    w.settle()
    view = "() => [window.pinganMap.getCenter().toArray(), window.pinganMap.getZoom()]"
    centre = w.page.evaluate(view)
    before = len(w.requests)
    with district.begin() as c:
        versions.bump(c, ["hazards"])
    w.page.wait_for_selector("body[data-refresh-count='1']", timeout=20_000)
    w.settle()
    after = w.requests[before:]
    assert w.page.get_attribute("body", "data-refreshed") == "hazards"
    assert any("/collections/hazards/tiles/" in u for u in after), after
    assert not any("/collections/index-villages/tiles/" in u for u in after), after
    assert any("/api/kpis" in u for u in after)  # hazards count in the KPIs
    # the view stayed where it was
    assert w.page.evaluate(view) == centre
    w.shot("refreshed")
    w.clean()
    w.context.close()


def test_town_user_sees_only_its_town(browser, server: str, users, district: Engine) -> None:
    login = users["town"]
    w = Watched(browser, server, login, size=(3840, 2160))
    town = login.areas[0]
    w.shot("town-3840")
    with district.connect() as c:
        lon, lat = c.execute(text("SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM pingan.towns"
                                  " WHERE code = :t"), {"t": town}).one()
        mine = set(c.execute(text("SELECT code FROM pingan.hazards WHERE town_code = :t"),
                             {"t": town}).scalars())
        items = set(c.execute(text("SELECT id FROM pingan.index_warnings WHERE status = 'open'"
                                   " AND town_code = :t"), {"t": town}).scalars())
    listed = {int(i) for i in w.page.eval_on_selector_all("#warnings li.warn",
                                                          "els => els.map(e => e.dataset.id)")}
    assert listed == items and items
    k = api(server, login, "/api/kpis")[1]
    assert k["scope"]["towns"] == [town]
    assert w.page.text_content("#kpi-hazards-found") == str(k["hazards"]["found"])
    w.page.check("input[data-layer=hazards]")
    w.page.evaluate(f"() => window.pinganMap.jumpTo({{center: [{lon}, {lat}], zoom: 14.5}})")
    w.settle()
    w.shot("town-hazards-3840")
    hazards = [f for f in w.rendered("hazards") if "code" in f]
    assert hazards, "no hazard drawn near the town centre"
    assert {f["code"] for f in hazards} <= mine
    w.clean()
    w.context.close()


def test_an_analyst_in_english_gets_counts_and_no_ladder(browser, server: str, users) -> None:
    w = Watched(browser, server, users["analyst"], query="?lang=en")
    assert w.page.text_content("header h1") == "Pingan Map"
    assert w.page.locator("#warnings").count() == 0  # the ladder is for staff
    assert w.page.text_content("#kpis h2").startswith("This month")
    assert w.page.locator("#kpi-hazards-found").count() == 0
    assert w.page.text_content("#kpi-persons-red").startswith("≥")  # suppressed counts: a lower bound
    assert w.page.locator("input[data-layer=hazards]").count() == 0  # not in its registry listing
    # a village's details: its score, and no indicator breakdown (it holds person figures, 0029)
    box = w.page.evaluate(CENTRE_OF_A_VILLAGE)
    w.page.mouse.click(box["x"], box["y"])
    w.page.wait_for_selector("#details:not([hidden]) #detail-score", timeout=20_000)
    w.page.wait_for_selector("#details #detail-indicators-withheld", timeout=20_000)
    assert w.page.locator("#details #detail-indicators").count() == 0
    assert w.page.text_content("#detail-indicators-withheld") == "not for this role"
    w.shot("analyst-en")
    w.clean()
    w.context.close()


def test_density_rasters_are_drawn(browser, server: str, users) -> None:
    """The latest monthly kernel densities (refreshed with the derived layers) are toggles of the
    layers panel; switched on, the map draws their PNG tiles from our own server."""
    w = Watched(browser, server, users["command"])
    listed = api(server, users["command"], "/api/rasters?kind=density&latest=1")[1]
    rasters = listed if isinstance(listed, list) else listed.get("rasters", listed.get("items", []))
    assert {r["layer"] for r in rasters} == {"hazards", "cases"}
    w.page.wait_for_selector(f"#layers input[data-layer='density-{rasters[0]['id']}']", timeout=20_000)
    toggles = set(w.page.eval_on_selector_all("#layers input[data-layer^='density-']",
                                              "els => els.map(e => e.dataset.layer)"))
    assert toggles == {f"density-{r['id']}" for r in rasters}
    chosen = next(r for r in rasters if r["layer"] == "hazards")
    w.page.check(f"#layers input[data-layer='density-{chosen['id']}']")
    w.settle()
    assert w.page.evaluate(
        f"() => window.pinganMap.getLayoutProperty('density-{chosen['id']}', 'visibility')") == "visible"
    drawn = [u for u in w.requests if f"/api/rasters/{chosen['id']}/tiles/WebMercatorQuad/" in u]
    assert drawn, "no density tile was requested"
    w.shot("command-density")
    w.clean()
    w.context.close()
