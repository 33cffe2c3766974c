{#
    One row per campaign that has events, with its Bigtable attributes when
    an enriched event carried them, else 'unknown' (and a null budget).

    Built after the facts whose campaign_id it describes (depends_on below).
    On BigQuery the job writes while dbt builds, and this table, built from
    the live event facts, would otherwise miss a campaign whose first event
    landed after it was built but before the facts were: their
    relationships tests would fail a correct build. Facts only grow, so a
    later build sees every campaign an earlier one did.
#}
-- depends_on: {{ ref('fct_campaign_performance_hourly') }}
-- depends_on: {{ ref('fct_campaign_performance_daily') }}
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
        {{ conversion_currency() }} as reporting_currency,
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
