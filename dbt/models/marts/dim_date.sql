{#
    Calendar days from var dim_date_start (inclusive) to var dim_date_end
    (exclusive). The defaults cover every event time ValidateSchema accepts:
    from 2000-01-01 (older is a broken clock, transforms/validate.go) to two
    years after the build day (an event may lead its arrival by at most
    --max_future_skew, an hour by default). The table is rebuilt at every
    build, so its end moves with the clock.
#}
{%- set end_var = var('dim_date_end', none) -%}
{%- set end_date = ("cast('" ~ end_var ~ "' as date)") if end_var else dbt.dateadd('year', 2, 'current_date') -%}
with

days as (

    {{ dbt.date_spine(
        'day',
        "cast('" ~ var('dim_date_start', '2000-01-01') ~ "' as date)",
        end_date
    ) }}

),

final as (

    select
        cast(date_day as date) as date_day,
        cast(extract(year from date_day) as {{ dbt.type_int() }}) as year_number,
        cast(extract(quarter from date_day) as {{ dbt.type_int() }}) as quarter_of_year,
        cast(extract(month from date_day) as {{ dbt.type_int() }}) as month_of_year,
        cast(extract(day from date_day) as {{ dbt.type_int() }}) as day_of_month,
        cast({{ iso_day_of_week('date_day') }} as {{ dbt.type_int() }}) as iso_day_of_week,
        {{ iso_day_of_week('date_day') }} in (6, 7) as is_weekend,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start_date
    from days

)

select * from final
