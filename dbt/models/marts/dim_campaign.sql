{#
    One row per campaign that has events, with its Bigtable attributes when
    an enriched event carried them, else 'unknown' (and a null budget).
#}
with

events as (

    select * from {{ ref('int_marketing_events') }}

),

attributes as (

    select * from {{ ref('int_campaign_attributes') }}

),

campaigns as (

    select
        campaign_id,
        case when count(distinct currency) > 1 then 'MIXED' else max(currency) end as reporting_currency,
        count(distinct platform) as platforms,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        cast(sum(case when enrichment_status = 'enriched' then 1 else 0 end) as {{ dbt.type_bigint() }}) as enriched_events,
        count(*) as events
    from events
    group by campaign_id

),

final as (

    select
        campaigns.campaign_id,
        coalesce(attributes.campaign_name, 'unknown') as campaign_name,
        coalesce(attributes.campaign_objective, 'unknown') as campaign_objective,
        coalesce(attributes.campaign_channel, 'unknown') as campaign_channel,
        coalesce(attributes.advertiser, 'unknown') as advertiser,
        attributes.campaign_daily_budget,
        attributes.campaign_start_at,
        attributes.campaign_end_at,
        case
            when attributes.campaign_id is null then 'not_enriched'
            when attributes.is_campaign_found then 'found'
            else 'not_in_bigtable'
        end as attributes_status,
        campaigns.reporting_currency,
        campaigns.platforms,
        campaigns.first_event_at,
        campaigns.last_event_at,
        campaigns.events,
        campaigns.enriched_events
    from campaigns
    left join attributes
        on campaigns.campaign_id = attributes.campaign_id

)

select * from final
