{#
    The few date functions dbt-core has no cross-database macro for,
    dispatched like dbt's own: default (DuckDB) and BigQuery.
#}

{# ISO day of the week: Monday 1 … Sunday 7. #}
{% macro iso_day_of_week(date_expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'campaign_pulse')(date_expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date_expr) -%}
    isodow({{ date_expr }})
{%- endmacro %}

{% macro bigquery__iso_day_of_week(date_expr) -%}
    mod(extract(dayofweek from {{ date_expr }}) + 5, 7) + 1
{%- endmacro %}

{# A timestamp n hours before ts, as a timestamp (dbt.dateadd gives a DATETIME on BigQuery). #}
{% macro hours_before(ts_expr, hours) -%}
    {{ time_before(ts_expr, hours, 'hour') }}
{%- endmacro %}

{% macro time_before(ts_expr, amount, datepart) -%}
    cast({{ dbt.dateadd(datepart, -1 * amount, ts_expr) }} as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#
    Now in UTC as a timestamp without zone, what the pipeline writes.
    DuckDB's now() has the session's zone; BigQuery's TIMESTAMP is UTC.
#}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now', 'campaign_pulse')()) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    cast(timezone('UTC', now()) as timestamp)
{%- endmacro %}

{% macro bigquery__utc_now() -%}
    current_timestamp()
{%- endmacro %}

{# An 8-byte float. dbt.type_float() is FLOAT, which DuckDB reads as a 4-byte REAL. #}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'campaign_pulse')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}

{#
    A filter on a source table's partition column. The BigQuery tables
    Terraform creates may require one (require_partition_filter); a lower
    bound satisfies that. By default it is 2000-01-01, the earliest event time
    ValidateSchema accepts, so every row counts on BigQuery as on DuckDB. var
    source_lookback_days, if set, bounds the scan to that many days instead:
    the marts' tests then fail for the hours it leaves out, as they do for
    expired partitions. The bound is the start of a day (UTC): the
    incremental marts rebuild whole hours and days, and a bound inside one
    would rebuild the boundary day from part of its rows and overwrite the
    mart's whole count with the part, for good. Elsewhere it is always true.
#}
{% macro source_partition_filter(column) -%}
    {{ return(adapter.dispatch('source_partition_filter', 'campaign_pulse')(column)) }}
{%- endmacro %}

{% macro default__source_partition_filter(column) -%}
    true
{%- endmacro %}

{% macro bigquery__source_partition_filter(column) -%}
    {%- set days = var('source_lookback_days', none) -%}
    {%- if days is none -%}
        {{ column }} >= timestamp('2000-01-01')
    {%- else -%}
        {{ column }} >= timestamp_trunc(timestamp_sub(current_timestamp(), interval {{ days | int }} day), day)
    {%- endif -%}
{%- endmacro %}

{#
    A field of a JSON payload held as bytes, as a string: null when the field
    is absent or JSON null, and when the payload is not UTF-8 JSON (other
    dead letters hold whatever bytes arrived), never an error. For the
    fields of a row BigQuery refused, whose dead letter's payload is the row
    as JSON (pipelines.RowEncoder.RowJSON), and of an event Enrich
    dead-lettered (the event in the contract's JSON).
#}
{% macro payload_field(payload_expr, field) -%}
    {{ return(adapter.dispatch('payload_field', 'campaign_pulse')(payload_expr, field)) }}
{%- endmacro %}

{% macro default__payload_field(payload_expr, field) -%}
    try(json_extract_string(decode({{ payload_expr }}), '$.{{ field }}'))
{%- endmacro %}

{% macro bigquery__payload_field(payload_expr, field) -%}
    safe.json_value(safe_convert_bytes_to_string({{ payload_expr }}), '$.{{ field }}')
{%- endmacro %}

{#
    The record a dead letter rejected past Dedup (stage enrich or sink, no
    message id) stands for: its event id and event time, as staging names a
    fact. The time is the payload's: an Enrich dead letter holds the event in
    the contract's JSON (timestamp), a refused fact row the row as JSON
    (event_timestamp). Null when the row has no event id.
#}
{% macro event_record_id() -%}
    event_id || ' ' || coalesce({{ payload_field('payload', 'timestamp') }}, {{ payload_field('payload', 'event_timestamp') }}, '')
{%- endmacro %}
