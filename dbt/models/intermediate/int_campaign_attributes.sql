{#
    One row per campaign with its attributes from Bigtable, as the latest
    enriched event saw them. Campaigns never enriched (enrichment disabled
    or unavailable for all their events) are absent; dim_campaign marks them
    unknown.
#}
with

events as (

    select * from {{ ref('stg_campaign_pulse__marketing_events') }}

),

enriched as (

    select
        campaign_id,
        is_campaign_found,
        campaign_name,
        campaign_objective,
        campaign_channel,
        advertiser,
        campaign_daily_budget,
        campaign_start_at,
        campaign_end_at,
        row_number() over (
            partition by campaign_id
            order by processed_at desc, event_id, event_at
        ) as recency_rank
    from events
    where enrichment_status = 'enriched'

),

final as (

    select
        campaign_id,
        is_campaign_found,
        campaign_name,
        campaign_objective,
        campaign_channel,
        advertiser,
        campaign_daily_budget,
        campaign_start_at,
        campaign_end_at
    from enriched
    where recency_rank = 1

)

select * from final
