-- Failures by target, counted from the index alone (Summaries). Portable.

-- +goose Up
CREATE INDEX runs_result_target_kind ON runs (result, target, kind);
CREATE INDEX drills_result_target ON drills (result, target);
