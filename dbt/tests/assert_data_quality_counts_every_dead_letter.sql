{#
    mart_data_quality loses no dead letter: its dead_letters add up to the
    rows of int_dead_letters, per arrival hour, stage and code. A key with a dead letter rejected in the last
    reconcile_quiet_minutes is not judged (macros/reconcile.sql): it may
    have arrived after the mart was built.
#}
with

mart as (

    select
        arrival_hour,
        stage,
        error_code,
        sum(dead_letters) as dead_letters,
        max(last_rejected_at) as last_rejected_at
    from {{ ref('mart_data_quality') }}
    group by 1, 2, 3

),

staged as (

    select
        cast({{ dbt.date_trunc('hour', 'arrived_at') }} as {{ dbt.type_timestamp() }}) as arrival_hour,
        stage,
        error_code,
        count(*) as dead_letters,
        max(rejected_at) as last_rejected_at
    from {{ ref('int_dead_letters') }}
    group by 1, 2, 3

)

select
    coalesce(mart.arrival_hour, staged.arrival_hour) as arrival_hour,
    coalesce(mart.stage, staged.stage) as stage,
    coalesce(mart.error_code, staged.error_code) as error_code,
    mart.dead_letters as mart_dead_letters,
    staged.dead_letters as staged_dead_letters
from mart
full outer join staged
    on mart.arrival_hour = staged.arrival_hour
    and mart.stage = staged.stage
    and mart.error_code = staged.error_code
where (mart.dead_letters is null
        or staged.dead_letters is null
        or mart.dead_letters != staged.dead_letters)
    and not {{ written_too_recently('mart.last_rejected_at') }}
    and not {{ written_too_recently('staged.last_rejected_at') }}
