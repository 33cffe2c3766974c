{# Calendar days from var dim_date_start (inclusive) to dim_date_end (exclusive). #}
with

days as (

    {{ dbt.date_spine(
        'day',
        "cast('" ~ var('dim_date_start', '2020-01-01') ~ "' as date)",
        "cast('" ~ var('dim_date_end', '2031-01-01') ~ "' as date)"
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
