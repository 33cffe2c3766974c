{#
    The event-grain facts with the time grains the marts group by and one
    0/1 column per event type, so every mart counts the same way.

    ingested_hour is the hour of arrival for the data-quality mart, on the
    clock its dead letters use: the source's arrival time, or, for a file's
    lines, which have none (their ingest_timestamp is their event time), when
    the pipeline processed them, as a file's dead letters count by their
    rejection time. Else a backfill of old events put its valid events in
    old hours and its rejects in the current one.
#}
with

events as (

    select * from {{ ref('stg_campaign_pulse__marketing_events') }}

),

final as (

    select
        events.*,
        cast({{ dbt.date_trunc('hour', 'event_at') }} as {{ dbt.type_timestamp() }}) as event_hour,
        cast(event_at as date) as event_date,
        cast({{ dbt.date_trunc('hour', "case when source_name = 'file' then processed_at else ingested_at end") }} as {{ dbt.type_timestamp() }}) as ingested_hour,
        case when event_type = 'view' then 1 else 0 end as is_view,
        case when event_type = 'click' then 1 else 0 end as is_click,
        case when event_type = 'engagement' then 1 else 0 end as is_engagement,
        case when event_type = 'conversion' then 1 else 0 end as is_conversion,
        case when is_late then 1 else 0 end as late_event,
        case when is_too_late then 1 else 0 end as too_late_event
    from events

)

select * from final
