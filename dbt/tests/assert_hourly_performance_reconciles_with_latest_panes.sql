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
        facts.in_time_conversion_value as fact_in_time_conversion_value,
        facts.last_processed_at
    from mart_and_panes
    left join facts
        on mart_and_panes.event_hour = facts.event_hour
        and mart_and_panes.campaign_id = facts.campaign_id
        and mart_and_panes.platform = facts.platform

)

select *
from compared
where (mart_events is null
        or coalesce(pane_events, 0) != mart_events - mart_too_late_events
        or coalesce(pane_events, 0) != mart_aggregated_events
        or (pane_events is not null
            and abs(coalesce(fact_in_time_conversion_value, 0) - pane_conversion_value) >= 0.01))
    and not {{ written_too_recently('last_processed_at') }}
    and not {{ written_too_recently('last_emitted_at') }}
