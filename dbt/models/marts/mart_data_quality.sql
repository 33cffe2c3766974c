{#
    Dead letters per arrival hour, stage and code, and their share of all the
    records that arrived in the hour. "All records" are the valid events
    (fact_marketing_events) plus the dead letters; duplicates, which the
    pipeline drops by design, are in neither table. Arrival time is the
    source's publish time (rejection time when unknown), so both sides are
    counted on the same clock. The dead letters are int_dead_letters': an
    ENRICH_UNAVAILABLE row whose event a retried bundle wrote as a fact after
    all is not counted, so no record is counted on both sides.
#}
with

dead_letters as (

    select * from {{ ref('int_dead_letters') }}

),

events as (

    select * from {{ ref('int_marketing_events') }}

),

dead_letters_hourly as (

    select
        cast({{ dbt.date_trunc('hour', 'arrived_at') }} as {{ dbt.type_timestamp() }}) as arrival_hour,
        stage,
        error_code,
        count(*) as dead_letters,
        cast(sum(payload_bytes) as {{ dbt.type_bigint() }}) as payload_bytes,
        max(rejected_at) as last_rejected_at
    from dead_letters
    group by 1, 2, 3

),

valid_hourly as (

    select
        ingested_hour as arrival_hour,
        count(*) as valid_events
    from events
    group by 1

),

rejected_hourly as (

    select
        arrival_hour,
        cast(sum(dead_letters) as {{ dbt.type_bigint() }}) as all_dead_letters
    from dead_letters_hourly
    group by 1

),

final as (

    select
        dead_letters_hourly.arrival_hour,
        dead_letters_hourly.stage,
        dead_letters_hourly.error_code,
        dead_letters_hourly.dead_letters,
        dead_letters_hourly.payload_bytes,
        coalesce(valid_hourly.valid_events, 0) + rejected_hourly.all_dead_letters as hour_records,
        cast(dead_letters_hourly.dead_letters as {{ type_double() }})
            / (coalesce(valid_hourly.valid_events, 0) + rejected_hourly.all_dead_letters) as share_of_records,
        dead_letters_hourly.last_rejected_at
    from dead_letters_hourly
    inner join rejected_hourly
        on dead_letters_hourly.arrival_hour = rejected_hourly.arrival_hour
    left join valid_hourly
        on dead_letters_hourly.arrival_hour = valid_hourly.arrival_hour

)

select * from final
