{#
    One row per arrival hour with any record: the valid events, the dead
    letters (in all and per stage) and their share of all records. Hours
    without a dead letter have their row too, with zeros, so a chart of the
    dead-letter share shows a clean hour as 0 rather than leaving it out.
    mart_data_quality breaks each hour's dead letters down by stage and code,
    and takes its hour_records from here.

    Records, dead letters and the clock are mart_data_quality's: valid events
    (int_marketing_events) by ingested_hour, dead letters (int_dead_letters)
    by arrival (publish time, rejection time when unknown); dropped
    duplicates are in neither.

    Only the hours whose dead letters the warehouse still holds in full
    (macros/reconcile.sql: dead_letters_complete; on BigQuery the dead
    letters expire after var dead_letter_retention_days, 30 by default, the
    facts do not): an older hour would show its valid events and no dead
    letter, a clean hour that was not.
#}
with

dead_letters as (

    select * from {{ ref('int_dead_letters') }}

),

events as (

    select * from {{ ref('int_marketing_events') }}

),

valid_hourly as (

    select
        ingested_hour as arrival_hour,
        count(*) as valid_events
    from events
    group by 1

),

dead_letters_hourly as (

    select
        arrival_hour,
        count(*) as dead_letters,
        sum(case when stage = 'parse' then 1 else 0 end) as parse_dead_letters,
        sum(case when stage = 'validate' then 1 else 0 end) as validate_dead_letters,
        sum(case when stage = 'enrich' then 1 else 0 end) as enrich_dead_letters,
        sum(case when stage = 'sink' then 1 else 0 end) as sink_dead_letters,
        max(rejected_at) as last_rejected_at
    from dead_letters
    group by 1

),

hours as (

    select
        coalesce(valid_hourly.arrival_hour, dead_letters_hourly.arrival_hour) as arrival_hour,
        coalesce(valid_hourly.valid_events, 0) as valid_events,
        coalesce(dead_letters_hourly.dead_letters, 0) as dead_letters,
        cast(coalesce(dead_letters_hourly.parse_dead_letters, 0) as {{ dbt.type_bigint() }}) as parse_dead_letters,
        cast(coalesce(dead_letters_hourly.validate_dead_letters, 0) as {{ dbt.type_bigint() }}) as validate_dead_letters,
        cast(coalesce(dead_letters_hourly.enrich_dead_letters, 0) as {{ dbt.type_bigint() }}) as enrich_dead_letters,
        cast(coalesce(dead_letters_hourly.sink_dead_letters, 0) as {{ dbt.type_bigint() }}) as sink_dead_letters,
        dead_letters_hourly.last_rejected_at
    from valid_hourly
    full outer join dead_letters_hourly
        on valid_hourly.arrival_hour = dead_letters_hourly.arrival_hour

),

final as (

    select
        arrival_hour,
        valid_events + dead_letters as records,
        valid_events,
        dead_letters,
        cast(dead_letters as {{ type_double() }}) / (valid_events + dead_letters) as dead_letter_share,
        parse_dead_letters,
        validate_dead_letters,
        enrich_dead_letters,
        sink_dead_letters,
        last_rejected_at
    from hours
    where {{ dead_letters_complete('arrival_hour') }}

)

select * from final
