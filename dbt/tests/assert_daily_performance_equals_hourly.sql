{#
    The daily mart and the hourly mart count the same events: for every
    (event_date, campaign_id, platform), the daily events, conversions,
    late_events and too_late_events equal the sums of the hourly ones, and
    conversion_value within a cent. (unique_users is not additive and is not
    compared.) The two marts are built one after the other: a day either of
    them saw written in the last reconcile_quiet_minutes is not judged
    (macros/reconcile.sql).
#}
with

hourly as (

    select
        event_date,
        campaign_id,
        platform,
        sum(events) as events,
        sum(conversions) as conversions,
        sum(late_events) as late_events,
        sum(too_late_events) as too_late_events,
        sum(conversion_value) as conversion_value,
        max(last_processed_at) as last_processed_at
    from {{ ref('fct_campaign_performance_hourly') }}
    group by 1, 2, 3

),

daily as (

    select * from {{ ref('fct_campaign_performance_daily') }}

)

select
    coalesce(hourly.event_date, daily.event_date) as event_date,
    coalesce(hourly.campaign_id, daily.campaign_id) as campaign_id,
    coalesce(hourly.platform, daily.platform) as platform,
    hourly.events as hourly_events,
    daily.events as daily_events
from hourly
full outer join daily
    on hourly.event_date = daily.event_date
    and hourly.campaign_id = daily.campaign_id
    and hourly.platform = daily.platform
where (hourly.events is null
        or daily.events is null
        or hourly.events != daily.events
        or hourly.conversions != daily.conversions
        or hourly.late_events != daily.late_events
        or hourly.too_late_events != daily.too_late_events
        or abs(hourly.conversion_value - daily.conversion_value) >= 0.01)
    and not {{ written_too_recently('hourly.last_processed_at') }}
    and not {{ written_too_recently('daily.last_processed_at') }}
