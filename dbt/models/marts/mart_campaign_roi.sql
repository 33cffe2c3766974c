{#
    Conversion value against budget per campaign. Spend is estimated as the
    campaign's daily budget (from Bigtable) times the share of a day it was
    seen active: its active hours (hours with at least one event, within the
    campaign's start and end when known) over 24. Counting whole days
    charged a full day's budget for the day in progress, and for a run that
    saw a campaign for minutes: an ROI far below the truth until the day
    ended. Hours follow a platform's pacing (it spends as it serves) and
    need no time zone for where a day starts.
    Without a known budget (enrichment disabled, unavailable, the campaign
    not in Bigtable, or a budget of 0), or when the campaign's conversions
    come in several currencies (their sum is no amount), spend and the
    ratios are null and budget_status says why there is no number.
#}
{%- set single_currency = "coalesce(campaigns.reporting_currency, '') != 'MIXED'" %}
with

hourly as (

    select * from {{ ref('fct_campaign_performance_hourly') }}

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

active as (

    select
        hourly.campaign_id,
        count(distinct hourly.event_date) as active_days,
        count(distinct hourly.event_hour) as active_hours,
        cast(sum(hourly.conversions) as {{ dbt.type_bigint() }}) as conversions,
        sum(hourly.conversion_value) as conversion_value
    from hourly
    inner join campaigns
        on hourly.campaign_id = campaigns.campaign_id
    where (campaigns.campaign_start_at is null
            or hourly.event_hour >= {{ dbt.date_trunc('hour', 'campaigns.campaign_start_at') }})
        and (campaigns.campaign_end_at is null or hourly.event_hour < campaigns.campaign_end_at)
    group by hourly.campaign_id

),

spend as (

    select
        campaigns.campaign_id,
        case
            when campaigns.campaign_daily_budget > 0 and {{ single_currency }}
                then campaigns.campaign_daily_budget * coalesce(active.active_hours, 0) / 24.0
        end as estimated_spend
    from campaigns
    left join active
        on campaigns.campaign_id = active.campaign_id

),

final as (

    select
        campaigns.campaign_id,
        campaigns.campaign_name,
        campaigns.advertiser,
        campaigns.reporting_currency as currency,
        coalesce(active.active_days, 0) as active_days,
        coalesce(active.active_hours, 0) as active_hours,
        coalesce(active.conversions, 0) as conversions,
        coalesce(active.conversion_value, 0) as conversion_value,
        campaigns.campaign_daily_budget as daily_budget,
        spend.estimated_spend,
        case
            when spend.estimated_spend > 0 then active.conversion_value / spend.estimated_spend
        end as return_on_spend,
        case
            when spend.estimated_spend > 0 then (active.conversion_value - spend.estimated_spend) / spend.estimated_spend
        end as roi,
        case
            when campaigns.reporting_currency = 'MIXED' then 'mixed_currency'
            when campaigns.campaign_daily_budget > 0 then 'known'
            when campaigns.campaign_daily_budget = 0 then 'zero'
            when campaigns.attributes_status = 'not_in_bigtable' then 'campaign_unknown'
            else 'not_enriched'
        end as budget_status
    from campaigns
    left join active
        on campaigns.campaign_id = active.campaign_id
    inner join spend
        on campaigns.campaign_id = spend.campaign_id

)

select * from final
