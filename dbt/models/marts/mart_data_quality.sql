{#
    Dead letters per arrival hour, stage and code, and their share of all the
    records that arrived in the hour. "All records" are the valid events
    (fact_marketing_events) plus the dead letters; duplicates, which the
    pipeline drops by design, are in neither table. Arrival time is the
    source's publish time (rejection time when unknown), so both sides are
    counted on the same clock. The dead letters are int_dead_letters': an
    ENRICH_UNAVAILABLE row whose event a retried bundle wrote as a fact after
    all is not counted, so no record is counted on both sides. The hour's
    totals, and the hours without a dead letter, are mart_data_quality_hourly.
#}
with

dead_letters as (

    select * from {{ ref('int_dead_letters') }}

),

hours as (

    select * from {{ ref('mart_data_quality_hourly') }}

),

dead_letters_hourly as (

    select
        arrival_hour,
        stage,
        error_code,
        count(*) as dead_letters,
        cast(sum(payload_bytes) as {{ dbt.type_bigint() }}) as payload_bytes,
        max(rejected_at) as last_rejected_at
    from dead_letters
    group by 1, 2, 3

),

final as (

    select
        dead_letters_hourly.arrival_hour,
        dead_letters_hourly.stage,
        dead_letters_hourly.error_code,
        dead_letters_hourly.dead_letters,
        dead_letters_hourly.payload_bytes,
        hours.records as hour_records,
        cast(dead_letters_hourly.dead_letters as {{ type_double() }}) / hours.records as share_of_records,
        dead_letters_hourly.last_rejected_at
    from dead_letters_hourly
    inner join hours
        on dead_letters_hourly.arrival_hour = hours.arrival_hour

)

select * from final
