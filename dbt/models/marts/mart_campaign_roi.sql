{#
    Conversion value against budget per campaign. Spend is estimated as the
    campaign's daily budget (from Bigtable) times its active days: days with
    at least one event, within the campaign's start and end when known.
    Without a known budget (enrichment disabled, unavailable, the campaign
    not in Bigtable, or a budget of 0), or when the campaign's conversions
    come in several currencies (their sum is no amount), spend and the
    ratios are null and budget_status says why there is no number.
#}
{%- set single_currency = "coalesce(campaigns.reporting_currency, '') != 'MIXED'" %}
with

daily as (

    select * from {{ ref('fct_campaign_performance_daily') }}

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

active_days as (

    select
        daily.campaign_id,
        count(distinct daily.event_date) as active_days,
        cast(sum(daily.conversions) as {{ dbt.type_bigint() }}) as conversions,
        sum(daily.conversion_value) as conversion_value
    from daily
    inner join campaigns
        on daily.campaign_id = campaigns.campaign_id
    where (campaigns.campaign_start_at is null or daily.event_date >= cast(campaigns.campaign_start_at as date))
        and (campaigns.campaign_end_at is null or daily.event_date <= cast(campaigns.campaign_end_at as date))
    group by daily.campaign_id

),

final as (

    select
        campaigns.campaign_id,
        campaigns.campaign_name,
        campaigns.advertiser,
        campaigns.reporting_currency as currency,
        coalesce(active_days.active_days, 0) as active_days,
        coalesce(active_days.conversions, 0) as conversions,
        coalesce(active_days.conversion_value, 0) as conversion_value,
        campaigns.campaign_daily_budget as daily_budget,
        case
            when campaigns.campaign_daily_budget > 0 and {{ single_currency }}
                then campaigns.campaign_daily_budget * coalesce(active_days.active_days, 0)
        end as estimated_spend,
        case
            when campaigns.campaign_daily_budget > 0 and {{ single_currency }} and active_days.active_days > 0
                then active_days.conversion_value / (campaigns.campaign_daily_budget * active_days.active_days)
        end as return_on_spend,
        case
            when campaigns.campaign_daily_budget > 0 and {{ single_currency }} and active_days.active_days > 0
                then (active_days.conversion_value - campaigns.campaign_daily_budget * active_days.active_days)
                    / (campaigns.campaign_daily_budget * active_days.active_days)
        end as roi,
        case
            when campaigns.reporting_currency = 'MIXED' then 'mixed_currency'
            when campaigns.campaign_daily_budget > 0 then 'known'
            when campaigns.campaign_daily_budget = 0 then 'zero'
            when campaigns.attributes_status = 'not_in_bigtable' then 'campaign_unknown'
            else 'not_enriched'
        end as budget_status
    from campaigns
    left join active_days
        on campaigns.campaign_id = active_days.campaign_id

)

select * from final
