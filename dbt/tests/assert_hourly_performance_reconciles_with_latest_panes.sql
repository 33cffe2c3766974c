{#
    The pipeline's streaming aggregates agree with its event-grain facts. For
    every (event_hour, campaign_id, platform) in the hourly mart or in the
    latest panes (stg_campaign_pulse__campaign_metrics: one row per window
    key and run, the run's highest pane_version; runs add up):

        mart.events - mart.too_late_events = sum(events) of the hour's latest panes

    because too-late events are kept at event grain and left out of the
    aggregates, and late ones are in their window's later pane. The
    conversion value of the facts that are not too late equals the panes'
    within a cent. Earlier panes are never added: panes accumulate.
#}
with

panes as (

    select
        cast({{ dbt.date_trunc('hour', 'window_start') }} as {{ dbt.type_timestamp() }}) as event_hour,
        campaign_id,
        platform,
        sum(events) as pane_events,
        sum(conversion_value) as pane_conversion_value
    from {{ ref('stg_campaign_pulse__campaign_metrics') }}
    group by 1, 2, 3

),

in_time_value as (

    select
        cast({{ dbt.date_trunc('hour', 'event_at') }} as {{ dbt.type_timestamp() }}) as event_hour,
        campaign_id,
        platform,
        coalesce(sum(conversion_value), 0) as conversion_value
    from {{ ref('stg_campaign_pulse__marketing_events') }}
    where not is_too_late
    group by 1, 2, 3

),

mart as (

    select * from {{ ref('fct_campaign_performance_hourly') }}

),

compared as (

    select
        coalesce(mart.event_hour, panes.event_hour) as event_hour,
        coalesce(mart.campaign_id, panes.campaign_id) as campaign_id,
        coalesce(mart.platform, panes.platform) as platform,
        mart.events as mart_events,
        mart.too_late_events as mart_too_late_events,
        panes.pane_events,
        in_time_value.conversion_value as fact_in_time_conversion_value,
        panes.pane_conversion_value
    from mart
    full outer join panes
        on mart.event_hour = panes.event_hour
        and mart.campaign_id = panes.campaign_id
        and mart.platform = panes.platform
    left join in_time_value
        on panes.event_hour = in_time_value.event_hour
        and panes.campaign_id = in_time_value.campaign_id
        and panes.platform = in_time_value.platform

)

select *
from compared
where mart_events is null
    or coalesce(pane_events, 0) != mart_events - mart_too_late_events
    or (pane_events is not null
        and abs(coalesce(fact_in_time_conversion_value, 0) - pane_conversion_value) >= 0.01)
