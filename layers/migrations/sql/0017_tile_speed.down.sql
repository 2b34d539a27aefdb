-- placeholder: filled in by the work on this migration
SELECT 1;
