-- Back to 0016/0020: explanations for every role that may see places, with the caller's rights.
GRANT SELECT ON pingan.index_months TO pingan_as_town, pingan_as_grid, pingan_as_analyst;
DROP FUNCTION pingan.index_contributions(date, text, text);
ALTER FUNCTION pingan.index_contributions_all(date, text, text) RENAME TO index_contributions;
GRANT EXECUTE ON FUNCTION pingan.index_contributions(date, text, text) TO PUBLIC;
DROP FUNCTION pingan.ctx_explains(text, text);
