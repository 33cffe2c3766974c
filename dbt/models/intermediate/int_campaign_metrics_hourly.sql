{#
    The pipeline's streaming aggregates (latest pane of each one-minute
    window in each run, summed over the runs that wrote the window) rolled up
    to (hour, campaign, platform). A window lies inside one hour, so these are
    exact sums of the windows, not estimates.
#}
with

panes as (

    select * from {{ ref('stg_campaign_pulse__campaign_metrics') }}

),

window_keys as (

    select
        window_start,
        campaign_id,
        platform,
        event_type,
        sum(events) as events,
        sum(conversion_value) as conversion_value,
        sum(late_events) as late_events,
        sum(panes_emitted) as panes_emitted,
        max(emitted_at) as last_emitted_at
    from panes
    group by 1, 2, 3, 4

),

final as (

    select
        cast({{ dbt.date_trunc('hour', 'window_start') }} as {{ dbt.type_timestamp() }}) as event_hour,
        campaign_id,
        platform,
        cast(sum(events) as {{ dbt.type_bigint() }}) as aggregated_events,
        cast(sum(case when event_type = 'conversion' then events else 0 end) as {{ dbt.type_bigint() }}) as aggregated_conversions,
        sum(case when event_type = 'conversion' then conversion_value else 0 end) as aggregated_conversion_value,
        cast(sum(late_events) as {{ dbt.type_bigint() }}) as aggregated_late_events,
        count(*) as window_keys,
        cast(sum(panes_emitted) as {{ dbt.type_bigint() }}) as panes_emitted,
        max(last_emitted_at) as last_emitted_at
    from window_keys
    group by 1, 2, 3

)

select * from final
