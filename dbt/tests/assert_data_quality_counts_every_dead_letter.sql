{#
    mart_data_quality loses no dead letter and counts none twice: its
    dead_letters add up, per arrival hour, stage and code, to the records of
    the raw dead_letter_events table, counted here on their own rather than
    through the models the mart is built from (staging's de-duplication and
    int_dead_letters' exclusion), so a record those models drop by mistake
    fails the test instead of vanishing from both sides.

    The rules, as documented in staging and int_dead_letters:
    - a record is named by its stage, source and message_id, or past Dedup
      (the enrich and sink stages) its event_id and event time; its copies
      count once, in
      the hour of the first-rejected copy's arrival (publish time, else
      rejection time). A row with neither id counts on its own.
    - an ENRICH_UNAVAILABLE record whose message a retried bundle then wrote
      as a fact (same event id, source and arrival time) does not count.

    A key with a dead letter rejected in the last reconcile_quiet_minutes is
    not judged (macros/reconcile.sql): it may have arrived after the mart
    was built. Nor is an hour the mart leaves out because its dead letters
    may have expired in part (dead_letters_complete).
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

raw_rows as (

    select
        stage,
        error_code,
        source,
        event_id,
        publish_timestamp,
        processing_timestamp,
        coalesce(message_id, case when stage in ('enrich', 'sink') then {{ event_record_id() }} end) as record_id
    from {{ source('campaign_pulse', 'dead_letter_events') }}
    where {{ source_partition_filter('processing_timestamp') }}

),

first_copies as (

    select
        *,
        row_number() over (
            partition by stage, source, record_id
            order by processing_timestamp
        ) as copy_rank
    from raw_rows

),

records as (

    select *
    from first_copies
    where (record_id is null or copy_rank = 1)
        and not (
            error_code = 'ENRICH_UNAVAILABLE'
            and exists (
                select 1
                from {{ source('campaign_pulse', 'fact_marketing_events') }} as facts
                where {{ source_partition_filter('facts.event_timestamp') }}
                    and facts.event_id = first_copies.event_id
                    and facts.source = first_copies.source
                    and facts.ingest_timestamp = first_copies.publish_timestamp
            )
        )

),

raw as (

    select
        cast({{ dbt.date_trunc('hour', 'coalesce(publish_timestamp, processing_timestamp)') }} as {{ dbt.type_timestamp() }}) as arrival_hour,
        stage,
        error_code,
        count(*) as dead_letters,
        max(processing_timestamp) as last_rejected_at
    from records
    group by 1, 2, 3

)

select
    coalesce(mart.arrival_hour, raw.arrival_hour) as arrival_hour,
    coalesce(mart.stage, raw.stage) as stage,
    coalesce(mart.error_code, raw.error_code) as error_code,
    mart.dead_letters as mart_dead_letters,
    raw.dead_letters as raw_dead_letters
from mart
full outer join raw
    on mart.arrival_hour = raw.arrival_hour
    and mart.stage = raw.stage
    and mart.error_code = raw.error_code
where (mart.dead_letters is null
        or raw.dead_letters is null
        or mart.dead_letters != raw.dead_letters)
    and not {{ written_too_recently('mart.last_rejected_at') }}
    and not {{ written_too_recently('raw.last_rejected_at') }}
    and {{ dead_letters_complete('coalesce(mart.arrival_hour, raw.arrival_hour)') }}
