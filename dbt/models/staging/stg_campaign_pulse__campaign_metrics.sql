{#
    The latest pane of each window key in each pipeline run. The pipeline
    writes one row per pane and panes accumulate within a run, so the row with
    the highest pane_version of a (window_start, campaign_id, platform,
    event_type, run_id) holds every event the window took in that run; earlier
    panes are partial and must not be added to it. Another run (a replay of
    dead letters into the same warehouse, a relaunched job) starts its panes
    from nothing, so its latest pane is added to the first run's, never
    compared with it. Rows written before run_id existed share its null.
#}
with

source_rows as (

    select * from {{ source('campaign_pulse', 'fact_campaign_metrics_1m') }}
    where {{ source_partition_filter('window_start') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by window_start, campaign_id, platform, event_type, run_id
            order by pane_version desc, emitted_at desc
        ) as pane_rank,
        count(*) over (
            partition by window_start, campaign_id, platform, event_type, run_id
        ) as panes_emitted
    from source_rows

),

renamed as (

    select
        ---------- keys
        cast(window_start as {{ dbt.type_timestamp() }}) as window_start,
        cast(window_end as {{ dbt.type_timestamp() }}) as window_end,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(platform as {{ dbt.type_string() }}) as platform,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(run_id as {{ dbt.type_string() }}) as run_id,

        ---------- pane
        cast(pane_version as {{ dbt.type_bigint() }}) as pane_version,
        cast(panes_emitted as {{ dbt.type_bigint() }}) as panes_emitted,

        ---------- measures
        cast(events as {{ dbt.type_bigint() }}) as events,
        cast(late_events as {{ dbt.type_bigint() }}) as late_events,
        cast(unique_users as {{ dbt.type_bigint() }}) as unique_users_approx,
        cast(conversion_value as {{ type_double() }}) as conversion_value,
        cast(currency as {{ dbt.type_string() }}) as currency,
        cast(engagement_score_sum as {{ type_double() }}) as engagement_score_sum,

        ---------- timestamps
        cast(max_ingest_timestamp as {{ dbt.type_timestamp() }}) as max_ingested_at,
        cast(emitted_at as {{ dbt.type_timestamp() }}) as emitted_at

    from ranked
    where pane_rank = 1

)

select * from renamed
