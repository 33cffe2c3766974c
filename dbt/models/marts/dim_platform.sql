{#
    One row per platform the contract accepts, whether or not it has events
    yet. Built after the facts that reference it, as dim_campaign is, so its
    activity covers theirs.
#}
-- depends_on: {{ ref('fct_campaign_performance_hourly') }}
-- depends_on: {{ ref('fct_campaign_performance_daily') }}
with

platforms as (

    select * from {{ ref('platforms') }}

),

events as (

    select * from {{ ref('int_marketing_events') }}

),

activity as (

    select
        platform,
        count(distinct campaign_id) as campaigns,
        count(*) as events
    from events
    group by platform

),

final as (

    select
        platforms.platform,
        platforms.platform_name,
        platforms.platform_kind,
        coalesce(activity.campaigns, 0) as campaigns,
        coalesce(activity.events, 0) as events
    from platforms
    left join activity
        on platforms.platform = activity.platform

)

select * from final
