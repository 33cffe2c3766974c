{#
    The incremental marts' filter: rows processed after the newest one the
    mart has seen (its mart_column, by default last_processed_at), less var
    incremental_lookback_hours for rows a sink commits out of order. A mart
    that has seen none has no newest row: max() is null, and a comparison
    with null would match nothing in every later build. Then every row is
    new. That is a mart first built while the warehouse was still empty (a
    scheduled dbt build right after terraform apply, before the job wrote
    anything), which would otherwise stay empty for good; and the hourly
    mart's last_pane_emitted_at while none of its hours has a pane, or just
    after the column was added to an existing mart (one rebuild of the
    hours with panes; the column is then not in the mart yet, see below).
#}
{% macro processed_since_last_build(column, mart_column='last_processed_at') -%}
    {#- dbt creates the new rows from this SQL before it adds a new column to
        the mart (on_schema_change), so a mart built before mart_column
        existed does not have it yet: every row is new then. -#}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- if mart_column | lower not in columns -%}
        true
    {%- else -%}
    ({{ column }} > (
        select {{ hours_before('max(' ~ mart_column ~ ')', var('incremental_lookback_hours')) }}
        from {{ this }}
    )
    or (select max({{ mart_column }}) from {{ this }}) is null)
    {%- endif -%}
{%- endmacro %}
