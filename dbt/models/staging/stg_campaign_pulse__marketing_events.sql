{#
    One row per event: per (event_id, event_timestamp). The pipeline
    de-duplicates, but the production sink writes at least once (the Storage
    Write API's default stream may repeat a row on retry), so a repeated row
    keeps its first-processed copy.

    Not one row per event_id: the pipeline's Dedup drops a repeat of an id
    only within one --dedup_horizon of event time (an id's events in one
    epoch), so an id a sender reuses later is two valid events, both counted
    in the panes and the run's summary. A repeat the sink writes is the same
    event, with the same timestamp, and a repeat Dedup drops never gets here.
#}
with

source_rows as (

    select * from {{ source('campaign_pulse', 'fact_marketing_events') }}
    where {{ source_partition_filter('event_timestamp') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by event_id, event_timestamp
            order by processed_at, ingest_timestamp
        ) as event_rank
    from source_rows

),

renamed as (

    select
        ---------- ids
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(campaign_id as {{ dbt.type_string() }}) as campaign_id,
        cast(ad_id as {{ dbt.type_string() }}) as ad_id,

        ---------- event
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(platform as {{ dbt.type_string() }}) as platform,
        cast(engagement_score as {{ type_double() }}) as engagement_score,
        cast(conversion_value as {{ type_double() }}) as conversion_value,
        cast(currency as {{ dbt.type_string() }}) as currency,
        cast(utm_source as {{ dbt.type_string() }}) as utm_source,
        cast(utm_medium as {{ dbt.type_string() }}) as utm_medium,
        cast(utm_campaign as {{ dbt.type_string() }}) as utm_campaign,
        cast(utm_term as {{ dbt.type_string() }}) as utm_term,
        cast(utm_content as {{ dbt.type_string() }}) as utm_content,
        cast(schema_version as {{ dbt.type_string() }}) as schema_version,
        cast(source as {{ dbt.type_string() }}) as source_name,

        ---------- lateness
        cast(is_late as {{ dbt.type_boolean() }}) as is_late,
        cast(is_too_late as {{ dbt.type_boolean() }}) as is_too_late,

        ---------- enrichment (null unless enrichment_status is enriched)
        cast(enrichment_status as {{ dbt.type_string() }}) as enrichment_status,
        cast(user_found as {{ dbt.type_boolean() }}) as is_user_found,
        cast(user_segment as {{ dbt.type_string() }}) as user_segment,
        cast(user_country as {{ dbt.type_string() }}) as user_country,
        cast(user_lifetime_value as {{ type_double() }}) as user_lifetime_value,
        cast(user_first_seen as {{ dbt.type_timestamp() }}) as user_first_seen_at,
        cast(campaign_found as {{ dbt.type_boolean() }}) as is_campaign_found,
        cast(campaign_name as {{ dbt.type_string() }}) as campaign_name,
        cast(campaign_objective as {{ dbt.type_string() }}) as campaign_objective,
        cast(campaign_channel as {{ dbt.type_string() }}) as campaign_channel,
        cast(advertiser as {{ dbt.type_string() }}) as advertiser,
        cast(campaign_daily_budget as {{ type_double() }}) as campaign_daily_budget,
        cast(campaign_start as {{ dbt.type_timestamp() }}) as campaign_start_at,
        cast(campaign_end as {{ dbt.type_timestamp() }}) as campaign_end_at,

        ---------- timestamps
        cast(event_timestamp as {{ dbt.type_timestamp() }}) as event_at,
        cast(window_start as {{ dbt.type_timestamp() }}) as window_start,
        cast(ingest_timestamp as {{ dbt.type_timestamp() }}) as ingested_at,
        cast(processed_at as {{ dbt.type_timestamp() }}) as processed_at

    from ranked
    where event_rank = 1

)

select * from renamed
