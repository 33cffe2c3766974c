{#
    The incremental marts' filter: rows processed after the newest one the
    mart has seen, less var incremental_lookback_hours for rows a sink commits
    out of order. A mart first built while the warehouse was still empty (a
    scheduled dbt build right after terraform apply, before the job wrote
    anything) has no newest row: max() is null, and a comparison with null
    would match nothing in every later build, leaving the mart empty for good.
    Then every row is new.
#}
{% macro processed_since_last_build(column) -%}
    ({{ column }} > (
        select {{ hours_before('max(last_processed_at)', var('incremental_lookback_hours')) }}
        from {{ this }}
    )
    or not exists (select 1 from {{ this }}))
{%- endmacro %}
