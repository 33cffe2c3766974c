{#
    The view → click → conversion funnel per campaign, over every valid
    event. Rates are null where the step before has no events. Conversions
    are not attributed to clicks (the contract carries no click id), so
    click_to_conversion_rate can exceed 1.
#}
with

hourly as (

    select * from {{ ref('fct_campaign_performance_hourly') }}

),

totals as (

    select
        campaign_id,
        cast(sum(views) as {{ dbt.type_bigint() }}) as views,
        cast(sum(clicks) as {{ dbt.type_bigint() }}) as clicks,
        cast(sum(engagements) as {{ dbt.type_bigint() }}) as engagements,
        cast(sum(conversions) as {{ dbt.type_bigint() }}) as conversions,
        sum(conversion_value) as conversion_value,
        {{ single_or_mixed('currency') }} as currency
    from hourly
    group by campaign_id

),

final as (

    select
        campaign_id,
        views,
        clicks,
        engagements,
        conversions,
        conversion_value,
        currency,
        cast(clicks as {{ type_double() }}) / nullif(views, 0) as view_to_click_rate,
        cast(conversions as {{ type_double() }}) / nullif(clicks, 0) as click_to_conversion_rate,
        cast(conversions as {{ type_double() }}) / nullif(views, 0) as view_to_conversion_rate
    from totals

)

select * from final
