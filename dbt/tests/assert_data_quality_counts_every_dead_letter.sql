{#
    mart_data_quality loses no dead letter: its dead_letters add up to the
    rows of stg_campaign_pulse__dead_letters, per stage and code.
#}
with

mart as (

    select stage, error_code, sum(dead_letters) as dead_letters
    from {{ ref('mart_data_quality') }}
    group by 1, 2

),

staged as (

    select stage, error_code, count(*) as dead_letters
    from {{ ref('stg_campaign_pulse__dead_letters') }}
    group by 1, 2

)

select
    coalesce(mart.stage, staged.stage) as stage,
    coalesce(mart.error_code, staged.error_code) as error_code,
    mart.dead_letters as mart_dead_letters,
    staged.dead_letters as staged_dead_letters
from mart
full outer join staged
    on mart.stage = staged.stage
    and mart.error_code = staged.error_code
where mart.dead_letters is null
    or staged.dead_letters is null
    or mart.dead_letters != staged.dead_letters
