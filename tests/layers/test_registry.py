"""The layer registry refuses inconsistent declarations and agrees with the database."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from layers.catalog import HAZARDS, default_registry
from layers.registry import Layer, Property, Registry, RegistryError, Tiles


def test_register_returns_new_registry_and_refuses_overwrite() -> None:
    empty = Registry()
    one = empty.register(HAZARDS)
    assert len(empty) == 0 and list(one) == ["hazards"]
    with pytest.raises(RegistryError, match="already registered"):
        one.register(HAZARDS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "Bad Id"}, "layer id"),
        ({"table": "hazards; drop"}, "schema.table"),
        ({"datetime_property": "nope"}, "not one of its properties"),
        ({"tiles": Tiles(group_by="nope")}, "not one of its properties"),
        ({"roles": frozenset({"root"})}, "unknown roles"),
    ],
)
def test_bad_layer_declarations(kwargs, message) -> None:
    base = dict(id="x", title_zh="x", title_en="x", table="pingan.hazards", geometry_type="Point",
                properties=(Property("state", "string", "状态", "State"),))
    with pytest.raises(RegistryError, match=message):
        Layer(**(base | kwargs))


def test_property_must_be_identifier() -> None:
    with pytest.raises(RegistryError):
        Property('x" OR 1=1 --', "string", "x", "x")


def test_instead_must_exist() -> None:
    layer = Layer(id="x", title_zh="x", title_en="x", table="pingan.t", geometry_type="Point",
                  properties=(), instead="x-agg")
    with pytest.raises(RegistryError, match="unknown 'x-agg'"):
        Registry().register(layer).validate()


def test_catalog_matches_database(engine) -> None:
    """Every table and column the registry names exists, with a GiST index on its geometry."""
    with engine.connect() as conn:
        for layer in default_registry().values():
            schema, table = layer.table.split(".")
            cols = {r[0] for r in conn.execute(text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t"), {"s": schema, "t": table})}
            wanted = {p.column or p.name for p in layer.properties}
            wanted |= {layer.id_column, layer.geometry_column}
            assert wanted <= cols, (layer.id, wanted - cols)
            kind = conn.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:r)"),
                                {"r": layer.table}).scalar_one()
            if kind == "v":  # a view (persons_served, counts per area): its base tables are indexed
                continue
            gist = conn.execute(text(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = :s AND tablename = :t "
                "AND indexdef LIKE '%USING gist (' || :g || ')%'"),
                {"s": schema, "t": table, "g": layer.geometry_column}).scalar_one()
            assert gist == 1, layer.id
