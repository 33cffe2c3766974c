{#
    mart_data_quality_hourly agrees with itself and with mart_data_quality:
    each hour's records are its valid events plus its dead letters, its dead
    letters are the sum of its stage columns and of mart_data_quality's rows
    of the hour, and every hour mart_data_quality has is here. (Its totals
    against what the pipeline counted are checked by the Go test that runs
    dbt on a pipeline run: pipelines/dbt_e2e_test.go.)
#}
with

hourly as (

    select * from {{ ref('mart_data_quality_hourly') }}

),

by_code as (

    select
        arrival_hour,
        sum(dead_letters) as dead_letters,
        max(last_rejected_at) as last_rejected_at
    from {{ ref('mart_data_quality') }}
    group by 1

)

select
    coalesce(hourly.arrival_hour, by_code.arrival_hour) as arrival_hour,
    hourly.records,
    hourly.valid_events,
    hourly.dead_letters,
    by_code.dead_letters as dead_letters_by_code
from hourly
full outer join by_code
    on hourly.arrival_hour = by_code.arrival_hour
where (
        hourly.arrival_hour is null
        or hourly.records != hourly.valid_events + hourly.dead_letters
        or hourly.dead_letters
            != hourly.parse_dead_letters + hourly.validate_dead_letters + hourly.enrich_dead_letters + hourly.sink_dead_letters
        or hourly.dead_letters != coalesce(by_code.dead_letters, 0)
    )
    and not {{ written_too_recently('hourly.last_rejected_at') }}
    and not {{ written_too_recently('by_code.last_rejected_at') }}
