-- The index's counted inputs, one row per month (layers/index_inputs.py): every village's counts
-- of every counted source as one matrix, written by the ETL refresh after the monthly statistics
-- and read by the index computation in one pass. `counts` holds len(sources) × len(codes) 32-bit
-- big-endian integers (int4send's format), row-major (a source's row holds its count for each
-- village in `codes` order). Unsuppressed counts of five-loss persons per village are among them: like the
-- registers they come from, they are for the roles that compute the index, not for analysts.
CREATE TABLE pingan.index_inputs (
    period date PRIMARY KEY CHECK (period = date_trunc('month', period)::date),
    codes text[] NOT NULL CHECK (array_ndims(codes) = 1),
    sources text[] NOT NULL CHECK (array_ndims(sources) = 1),
    counts bytea NOT NULL CHECK (length(counts) = 4 * cardinality(codes) * cardinality(sources)),
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
-- matrices of a few MB, read whole: uncompressed out of line (compression costs more time than
-- the bytes it saves on a local read)
ALTER TABLE pingan.index_inputs ALTER COLUMN counts SET STORAGE EXTERNAL,
    ALTER COLUMN codes SET STORAGE EXTERNAL;
GRANT SELECT ON pingan.index_inputs TO pingan_as_admin, pingan_as_command;

-- The scores' explanations (0016: index_months.value and .risk, [indicator][place] real[]) become
-- the same matrices as bytes: 4-byte big-endian IEEE floats (float4send's format), indicator-major.
-- A real[] is received element by element (at 30,000 villages x 60 months, 43M elements: 2.5 s of
-- a 10 s recomputation); bytes are copied as they come. One place's explanation reads 4 bytes per
-- indicator (substring of an uncompressed out-of-line value fetches only that slice).
CREATE FUNCTION pingan.float4_be(b bytea) RETURNS real
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN e = 255 THEN CASE WHEN m <> 0 THEN 'NaN'::real WHEN s THEN '-Infinity'::real ELSE 'Infinity'::real END
        WHEN e = 0 THEN ((CASE WHEN s THEN -1::float8 ELSE 1::float8 END) * m * 2::float8 ^ -149)::real
        ELSE ((CASE WHEN s THEN -1::float8 ELSE 1::float8 END) * (1 + m / 8388608.0::float8) * 2::float8 ^ (e - 127))::real
    END
    FROM (SELECT bits < 0 AS s, (bits >> 23) & 255 AS e, bits & 8388607 AS m
          FROM (SELECT ('x' || encode(substring(b FROM 1 FOR 4), 'hex'))::bit(32)::integer AS bits) x) y
$$;
COMMENT ON FUNCTION pingan.float4_be(bytea) IS 'The real whose big-endian IEEE bytes (float4send) start b';

CREATE FUNCTION pingan.tmp_float4_bytes(a real[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT coalesce(string_agg(float4send(x), ''::bytea ORDER BY o), ''::bytea)
    FROM unnest(a) WITH ORDINALITY AS u(x, o)
$$;
ALTER TABLE pingan.index_months DROP CONSTRAINT index_months_check2;
ALTER TABLE pingan.index_months
    ALTER COLUMN value TYPE bytea USING pingan.tmp_float4_bytes(value),
    ALTER COLUMN risk TYPE bytea USING pingan.tmp_float4_bytes(risk);
ALTER TABLE pingan.index_months ALTER COLUMN value SET STORAGE EXTERNAL, ALTER COLUMN risk SET STORAGE EXTERNAL;
ALTER TABLE pingan.index_months ADD CONSTRAINT index_months_explanations CHECK (
    length(value) = 4 * cardinality(indicators) * cardinality(codes) AND length(risk) = length(value));
DROP FUNCTION pingan.tmp_float4_bytes(real[]);

CREATE OR REPLACE FUNCTION pingan.index_contributions(p_period date, p_level text, p_code text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_object_agg(u.id, CASE WHEN u.w = 'NaN' THEN jsonb_build_object('skipped', true)
        ELSE jsonb_build_object('value', pingan.index_round(u.v, 6), 'risk', pingan.index_round(u.r, 6),
                                'weight', pingan.index_round(u.w, 6),
                                'deduction', pingan.index_round(100 * u.w * u.r, 4)) END)
    FROM pingan.index_months m
    CROSS JOIN LATERAL (SELECT array_position(m.codes, p_code) AS n, cardinality(m.codes) AS places) p
    CROSS JOIN LATERAL (
        SELECT i.id, i.w,
            pingan.float4_be(substring(m.value FROM (4 * ((i.k - 1) * p.places + p.n - 1) + 1)::integer FOR 4)) AS v,
            pingan.float4_be(substring(m.risk FROM (4 * ((i.k - 1) * p.places + p.n - 1) + 1)::integer FOR 4)) AS r
        FROM unnest(m.indicators, m.weights) WITH ORDINALITY AS i(id, w, k)) u
    WHERE m.period = p_period AND m.level = p_level AND p.n IS NOT NULL
$$;

-- What each ladder item's steps are, as one md5 (layers/index.py): a rebuild writes an item's
-- steps again only when they changed. NULL (items stored before): written again at the next one.
ALTER TABLE pingan.index_warnings ADD COLUMN steps_md5 text;
