ALTER TABLE pingan.index_warnings DROP COLUMN steps_md5;

-- index_months.value / .risk back to [indicator][place] real[] (0016), then the inputs go
CREATE FUNCTION pingan.tmp_float4_array(b bytea, k integer, n integer) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN k * n = 0 THEN '{}'::real[] ELSE (
        SELECT array_agg(r_ ORDER BY i) FROM (
            SELECT i, ARRAY(SELECT pingan.float4_be(substring(b FROM 4 * (i * n + j) + 1 FOR 4))
                            FROM generate_series(0, n - 1) j ORDER BY j) AS r_
            FROM generate_series(0, k - 1) i) r) END
$$;
ALTER TABLE pingan.index_months DROP CONSTRAINT index_months_explanations;
ALTER TABLE pingan.index_months
    ALTER COLUMN value TYPE real[] USING pingan.tmp_float4_array(value, cardinality(indicators), cardinality(codes)),
    ALTER COLUMN risk TYPE real[] USING pingan.tmp_float4_array(risk, cardinality(indicators), cardinality(codes));
ALTER TABLE pingan.index_months ALTER COLUMN value SET STORAGE EXTERNAL, ALTER COLUMN risk SET STORAGE EXTERNAL;
ALTER TABLE pingan.index_months ADD CONSTRAINT index_months_check2 CHECK (
    cardinality(value) = cardinality(indicators) * cardinality(codes) AND cardinality(risk) = cardinality(value));
DROP FUNCTION pingan.tmp_float4_array(bytea, integer, integer);

CREATE OR REPLACE FUNCTION pingan.index_contributions(p_period date, p_level text, p_code text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_object_agg(u.id, CASE WHEN u.w = 'NaN' THEN jsonb_build_object('skipped', true)
        ELSE jsonb_build_object('value', pingan.index_round(u.v, 6), 'risk', pingan.index_round(u.r, 6),
                                'weight', pingan.index_round(u.w, 6),
                                'deduction', pingan.index_round(100 * u.w * u.r, 4)) END)
    FROM pingan.index_months m
    CROSS JOIN LATERAL (SELECT array_position(m.codes, p_code) AS n) p
    CROSS JOIN LATERAL unnest(m.indicators, m.weights,
        m.value[1:cardinality(m.indicators)][p.n:p.n], m.risk[1:cardinality(m.indicators)][p.n:p.n])
        AS u(id, w, v, r)
    WHERE m.period = p_period AND m.level = p_level AND p.n IS NOT NULL
$$;
DROP FUNCTION pingan.float4_be(bytea);

DROP TABLE pingan.index_inputs;
