{#
    The reconciliation tests compare things written at different moments:
    an event's fact row and its window's pane (two branches of the job, two
    sinks), or a mart dbt built a minute ago and the staging view, which
    reads the tables as they are now. On a warehouse a running job writes
    to, a key written in the last minutes is in flight: its fact may be in
    and its pane not yet, or it may have arrived after the mart was built.
    Judging it would fail a correct build. So the tests judge only keys
    whose newest write (processed_at, emitted_at, rejected_at) is at least
    var reconcile_quiet_minutes old:

    - BigQuery, 60 by default: the job streams while dbt builds and tests;
      an hour covers the sinks' commit latency and retries and a long build.
    - DuckDB, 0 by default: every key is judged. The pipeline holds the
      file's lock while it writes, so dbt only ever opens a quiet warehouse.

    A key that stays different after it has been quiet that long fails.
#}
{% macro reconcile_quiet_minutes() -%}
    {%- set minutes = var('reconcile_quiet_minutes', 0 if target.type == 'duckdb' else 60) | int -%}
    {%- if minutes < 0 -%}
        {{ exceptions.raise_compiler_error("var reconcile_quiet_minutes must be 0 or more, not " ~ minutes) }}
    {%- endif -%}
    {{ return(minutes) }}
{%- endmacro %}

{# True when the write at ts_expr is too recent for a test to judge its key; null (no write) is not. #}
{% macro written_too_recently(ts_expr) -%}
    {%- set minutes = reconcile_quiet_minutes() -%}
    {%- if minutes == 0 -%}
        false
    {%- else -%}
        coalesce({{ ts_expr }} > {{ time_before(utc_now(), minutes, 'minute') }}, false)
    {%- endif -%}
{%- endmacro %}

{#
    The data-quality marts cover the arrival hours whose dead letters the
    warehouse still holds in full. On BigQuery, dead_letter_events'
    partitions (by processing day) expire after Terraform's
    dead_letter_expiration_days, 30 by default, while the facts do not: an
    older hour would keep its valid events and show no dead letter, a clean
    hour that was not. var dead_letter_retention_days (BigQuery: 30; DuckDB:
    unset, nothing expires) must equal Terraform's setting. A partition
    expires whole, a day at a time, and a record is processed at or after it
    arrives, so the hours from the first whole day after now less the
    retention are complete.
#}
{% macro dead_letters_complete_since() -%}
    {%- set days = var('dead_letter_retention_days', none if target.type == 'duckdb' else 30) -%}
    {%- if days is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if (days | int) < 1 -%}
        {{ exceptions.raise_compiler_error("var dead_letter_retention_days must be 1 or more, not " ~ days) }}
    {%- endif -%}
    {{ return(dbt.dateadd('day', 1, dbt.date_trunc('day', time_before(utc_now(), days | int, 'day')))) }}
{%- endmacro %}

{# True for an arrival hour the data-quality marts cover (dead_letters_complete_since). #}
{% macro dead_letters_complete(hour_expr) -%}
    {%- set since = dead_letters_complete_since() -%}
    {%- if since is none -%}
        true
    {%- else -%}
        {{ hour_expr }} >= cast({{ since }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}
