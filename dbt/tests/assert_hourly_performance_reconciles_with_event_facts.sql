{#
    The hourly mart is the event-grain facts, grouped. For every
    (event_hour, campaign_id, platform) on either side, the mart's events,
    views, clicks, engagements, conversions, late_events and too_late_events
    equal the counts of rows of stg_campaign_pulse__marketing_events (one per
    valid event id) in that hour, and its conversion_value equals the sum of
    the conversions' values within half a cent. A key on one side only, or any difference, is a row.
    A key with a fact written in the last reconcile_quiet_minutes is not
    judged (macros/reconcile.sql): it may have arrived after the mart was built.
#}
with

facts as (

    select
        cast({{ dbt.date_trunc('hour', 'event_at') }} as {{ dbt.type_timestamp() }}) as event_hour,
        campaign_id,
        platform,
        count(*) as events,
        sum(case when event_type = 'view' then 1 else 0 end) as views,
        sum(case when event_type = 'click' then 1 else 0 end) as clicks,
        sum(case when event_type = 'engagement' then 1 else 0 end) as engagements,
        sum(case when event_type = 'conversion' then 1 else 0 end) as conversions,
        sum(case when is_late then 1 else 0 end) as late_events,
        sum(case when is_too_late then 1 else 0 end) as too_late_events,
        coalesce(sum(case when event_type = 'conversion' then conversion_value end), 0) as conversion_value,
        max(processed_at) as last_processed_at
    from {{ ref('stg_campaign_pulse__marketing_events') }}
    group by 1, 2, 3

),

mart as (

    select * from {{ ref('fct_campaign_performance_hourly') }}

),

compared as (

    select
        coalesce(facts.event_hour, mart.event_hour) as event_hour,
        coalesce(facts.campaign_id, mart.campaign_id) as campaign_id,
        coalesce(facts.platform, mart.platform) as platform,
        facts.events as fact_events,
        mart.events as mart_events,
        facts.conversion_value as fact_conversion_value,
        mart.conversion_value as mart_conversion_value,
        case
            when facts.events is null then 'key only in the mart'
            when mart.events is null then 'key only in the facts'
            when facts.events != mart.events then 'events'
            when facts.views != mart.views then 'views'
            when facts.clicks != mart.clicks then 'clicks'
            when facts.engagements != mart.engagements then 'engagements'
            when facts.conversions != mart.conversions then 'conversions'
            when facts.late_events != mart.late_events then 'late_events'
            when facts.too_late_events != mart.too_late_events then 'too_late_events'
            when abs(facts.conversion_value - mart.conversion_value) >= 0.005 then 'conversion_value'
        end as mismatch,
        facts.last_processed_at as fact_last_processed_at,
        mart.last_processed_at as mart_last_processed_at
    from facts
    full outer join mart
        on facts.event_hour = mart.event_hour
        and facts.campaign_id = mart.campaign_id
        and facts.platform = mart.platform

)

select * from compared
where mismatch is not null
    and not {{ written_too_recently('fact_last_processed_at') }}
    and not {{ written_too_recently('mart_last_processed_at') }}
