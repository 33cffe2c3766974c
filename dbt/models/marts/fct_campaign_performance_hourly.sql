{#
    Campaign performance per (event hour, campaign, platform), built from the
    event-grain facts: every valid event counts, the too-late ones included,
    and users are counted exactly. The pipeline's streaming aggregates (the
    latest panes) sit beside them as aggregated_events, which must equal
    events - too_late_events (tests/assert_hourly_performance_reconciles_with_latest_panes.sql).
    conversion_value and currency are the conversions' only: the contract
    lets any event carry a value and a currency, and a click's is not a
    conversion's.

    Incremental: a run rebuilds every hour that holds an event processed
    after the newest one this table has seen, or a pane emitted after the
    newest one it has seen (each less a lookback margin for rows a sink
    commits out of order). So a late or too-late event re-opens its hour,
    however old, and so does a pane that lands after its hour's last event
    (the window's final pane fires when the watermark passes, which a
    backlog can hold for hours, and a pane sink can lag the event sink):
    aggregated_events never keeps an earlier pane's count.
#}
{{
    config(
        materialized='incremental',
        unique_key=['event_hour', 'campaign_id', 'platform'],
        on_schema_change='append_new_columns',
        partition_by=({'field': 'event_date', 'data_type': 'date', 'granularity': 'day'} if target.type == 'bigquery' else none),
        cluster_by=(['campaign_id', 'platform'] if target.type == 'bigquery' else none),
    )
}}

with

events as (

    select * from {{ ref('int_marketing_events') }}

),

panes as (

    select * from {{ ref('int_campaign_metrics_hourly') }}

),

{% if is_incremental() %}
changed_hours as (

    select event_hour
    from events
    where {{ processed_since_last_build('processed_at') }}
    union distinct
    select event_hour
    from panes
    where {{ processed_since_last_build('last_emitted_at', 'last_pane_emitted_at') }}

),
{% endif %}

hourly as (

    select
        event_hour,
        min(event_date) as event_date,
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
        max(processed_at) as last_processed_at
    from events
    {% if is_incremental() %}
    where event_hour in (select event_hour from changed_hours)
    {% endif %}
    group by event_hour, campaign_id, platform

),

final as (

    select
        hourly.event_hour,
        hourly.event_date,
        hourly.campaign_id,
        hourly.platform,
        hourly.events,
        hourly.views,
        hourly.clicks,
        hourly.engagements,
        hourly.conversions,
        hourly.conversion_value,
        hourly.currency,
        hourly.engagement_score_sum,
        hourly.unique_users,
        hourly.late_events,
        hourly.too_late_events,
        coalesce(panes.aggregated_events, 0) as aggregated_events,
        coalesce(panes.aggregated_conversion_value, 0) as aggregated_conversion_value,
        coalesce(panes.panes_emitted, 0) as panes_emitted,
        hourly.last_processed_at,
        panes.last_emitted_at as last_pane_emitted_at
    from hourly
    left join panes
        on hourly.event_hour = panes.event_hour
        and hourly.campaign_id = panes.campaign_id
        and hourly.platform = panes.platform

)

select * from final
