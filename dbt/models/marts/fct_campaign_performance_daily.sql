{#
    Campaign performance per (event date, campaign, platform), from the
    event-grain facts like the hourly mart (so unique_users is an exact
    daily count, not a sum of hours). Incremental like the hourly mart: a
    run rebuilds every day that holds a newly processed event.
#}
{{
    config(
        materialized='incremental',
        unique_key=['event_date', 'campaign_id', 'platform'],
        on_schema_change='append_new_columns',
        partition_by=({'field': 'event_date', 'data_type': 'date', 'granularity': 'day'} if target.type == 'bigquery' else none),
        cluster_by=(['campaign_id', 'platform'] if target.type == 'bigquery' else none),
    )
}}

with

events as (

    select * from {{ ref('int_marketing_events') }}

),

{% if is_incremental() %}
changed_days as (

    select distinct event_date
    from events
    where {{ processed_since_last_build('processed_at') }}

),
{% endif %}

final as (

    select
        event_date,
        campaign_id,
        platform,
        count(*) as events,
        cast(sum(is_view) as {{ dbt.type_bigint() }}) as views,
        cast(sum(is_click) as {{ dbt.type_bigint() }}) as clicks,
        cast(sum(is_engagement) as {{ dbt.type_bigint() }}) as engagements,
        cast(sum(is_conversion) as {{ dbt.type_bigint() }}) as conversions,
        {{ conversion_value_sum() }} as conversion_value,
        {{ conversion_currency() }} as currency,
        coalesce(sum(engagement_score), 0) as engagement_score_sum,
        count(distinct user_id) as unique_users,
        cast(sum(late_event) as {{ dbt.type_bigint() }}) as late_events,
        cast(sum(too_late_event) as {{ dbt.type_bigint() }}) as too_late_events,
        count(distinct event_hour) as active_hours,
        max(processed_at) as last_processed_at
    from events
    {% if is_incremental() %}
    where event_date in (select event_date from changed_days)
    {% endif %}
    group by event_date, campaign_id, platform

)

select * from final
