{#
    The pipeline's streaming aggregates agree with its event-grain facts. For
    every (event_hour, campaign_id, platform) in the hourly mart or in the
    latest panes (stg_campaign_pulse__campaign_metrics: one row per window
    key and run, the run's highest pane_version; runs add up):

        mart.events - mart.too_late_events = sum(events) of the hour's latest panes
                                           = mart.aggregated_events

    because too-late events are kept at event grain and left out of the
    aggregates, and late ones are in their window's later pane. The
    conversion value of the conversions that are not too late equals the
    conversion keys' in the panes within a cent. Earlier panes are never added: panes accumulate.
    The mart's own aggregated_events is the panes' as they are now: an
    incremental build that missed a pane landing after its hour's events
    would keep an earlier pane's count.

    A fact row BigQuery refused (a SINK_REJECTED dead letter of
    fact_marketing_events, whose payload is the row as JSON) is an event the
    panes counted and the facts do not hold: it is counted on the facts' side
    from its dead letter, so one refused row does not fail this test, and
    skip every model downstream of the hourly mart, at every build from then
    on. The dead letters say how many there are (mart_data_quality).

    A key with a fact or a pane written in the last reconcile_quiet_minutes
    is not judged (macros/reconcile.sql): a running job writes an event's
    fact and its window's pane through two sinks, seconds apart.
#}
with

panes as (

    select
        cast({{ dbt.date_trunc('hour', 'window_start') }} as {{ dbt.type_timestamp() }}) as event_hour,
        campaign_id,
        platform,
        sum(events) as pane_events,
        sum(case when event_type = 'conversion' then conversion_value else 0 end) as pane_conversion_value,
        max(emitted_at) as last_emitted_at
    from {{ ref('stg_campaign_pulse__campaign_metrics') }}
    group by 1, 2, 3

),

facts as (

    select
        cast({{ dbt.date_trunc('hour', 'event_at') }} as {{ dbt.type_timestamp() }}) as event_hour,
        campaign_id,
        platform,
        coalesce(sum(case when not is_too_late and event_type = 'conversion' then conversion_value end), 0) as in_time_conversion_value,
        max(processed_at) as last_processed_at
    from {{ ref('stg_campaign_pulse__marketing_events') }}
    group by 1, 2, 3

),

refused_rows as (

    select
        event_id,
        processing_timestamp,
        {{ payload_field('payload', 'event_timestamp') }} as event_timestamp,
        {{ payload_field('payload', 'campaign_id') }} as campaign_id,
        {{ payload_field('payload', 'platform') }} as platform,
        {{ payload_field('payload', 'event_type') }} as event_type,
        {{ payload_field('payload', 'conversion_value') }} as conversion_value,
        {{ payload_field('payload', 'is_too_late') }} as is_too_late
    from {{ source('campaign_pulse', 'dead_letter_events') }}
    where {{ source_partition_filter('processing_timestamp') }}
        and stage = 'sink'
        and error_code = 'SINK_REJECTED'
        and source = 'bigquery:fact_marketing_events'

),

refused as (

    -- a retried bundle refuses its rows again: one per event, the first;
    -- RowJSON writes timestamps in UTC, RFC 3339 (2026-01-02T03:04:05.6Z), so
    -- the hour is read from the text, as 'YYYY-MM-DD HH:00:00', a form both
    -- warehouses cast
    select
        cast(substr(event_timestamp, 1, 10) || ' ' || substr(event_timestamp, 12, 2) || ':00:00'
            as {{ dbt.type_timestamp() }}) as event_hour,
        campaign_id,
        platform,
        count(*) as refused_in_time_events,
        coalesce(sum(case when event_type = 'conversion' then cast(conversion_value as {{ type_double() }}) end), 0)
            as refused_in_time_conversion_value,
        max(processing_timestamp) as last_refused_at
    from (
        select
            *,
            row_number() over (partition by event_id, event_timestamp order by processing_timestamp) as copy_rank
        from refused_rows
    ) as copies
    where copy_rank = 1 and is_too_late = 'false'
    group by 1, 2, 3

),

mart as (

    select * from {{ ref('fct_campaign_performance_hourly') }}

),

mart_and_panes as (

    select
        coalesce(mart.event_hour, panes.event_hour) as event_hour,
        coalesce(mart.campaign_id, panes.campaign_id) as campaign_id,
        coalesce(mart.platform, panes.platform) as platform,
        mart.events as mart_events,
        mart.too_late_events as mart_too_late_events,
        mart.aggregated_events as mart_aggregated_events,
        panes.pane_events,
        panes.pane_conversion_value,
        panes.last_emitted_at
    from mart
    full outer join panes
        on mart.event_hour = panes.event_hour
        and mart.campaign_id = panes.campaign_id
        and mart.platform = panes.platform

),

compared as (

    select
        mart_and_panes.*,
        coalesce(mart_and_panes.mart_events - mart_and_panes.mart_too_late_events, 0)
            + coalesce(refused.refused_in_time_events, 0) as in_time_events,
        coalesce(facts.in_time_conversion_value, 0)
            + coalesce(refused.refused_in_time_conversion_value, 0) as in_time_conversion_value,
        refused.refused_in_time_events,
        facts.last_processed_at,
        refused.last_refused_at
    from mart_and_panes
    left join facts
        on mart_and_panes.event_hour = facts.event_hour
        and mart_and_panes.campaign_id = facts.campaign_id
        and mart_and_panes.platform = facts.platform
    left join refused
        on mart_and_panes.event_hour = refused.event_hour
        and mart_and_panes.campaign_id = refused.campaign_id
        and mart_and_panes.platform = refused.platform

)

select *
from compared
where (coalesce(pane_events, 0) != in_time_events
        -- a key whose every event was refused has no mart row
        or (mart_events is null and refused_in_time_events is null)
        or (mart_events is not null and coalesce(pane_events, 0) != mart_aggregated_events)
        or (pane_events is not null
            and abs(in_time_conversion_value - pane_conversion_value) >= 0.01))
    and not {{ written_too_recently('last_processed_at') }}
    and not {{ written_too_recently('last_emitted_at') }}
    and not {{ written_too_recently('last_refused_at') }}
