{#
    Rejected records, one row per record. The raw payload stays in the source
    table for the replay tool; the models need only its size.

    The production sink writes at least once: a retried append, or a retried
    bundle that rejects the same records again (with a later
    processing_timestamp), repeats rows. A record is named by its source and
    its message_id (the Pub/Sub message id, a file line's path and offset);
    past Dedup, where the enrich and sink stages reject events, by its
    event_id and event time (event_record_id(): an id a sender reused a
    dedup horizon later is two events, as in the facts). The
    first-rejected row of each is kept. A row with neither
    (written by a build before message_id, or a refused pane row) cannot be
    told from another and is kept.
#}
with

source_rows as (

    select * from {{ source('campaign_pulse', 'dead_letter_events') }}
    where {{ source_partition_filter('processing_timestamp') }}

),

identified as (

    select
        *,
        coalesce(
            message_id,
            case when stage in ('enrich', 'sink') then {{ event_record_id() }} end
        ) as record_id
    from source_rows

),

ranked as (

    select
        *,
        row_number() over (
            partition by stage, source, record_id
            order by processing_timestamp
        ) as copy_rank
    from identified

),

renamed as (

    select
        cast(stage as {{ dbt.type_string() }}) as stage,
        cast(error_code as {{ dbt.type_string() }}) as error_code,
        cast(error_message as {{ dbt.type_string() }}) as error_message,
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(payload_bytes as {{ dbt.type_bigint() }}) as payload_bytes,
        cast(source as {{ dbt.type_string() }}) as source_name,
        cast(pipeline_version as {{ dbt.type_string() }}) as pipeline_version,
        cast(message_id as {{ dbt.type_string() }}) as message_id,
        cast(publish_timestamp as {{ dbt.type_timestamp() }}) as published_at,
        cast(processing_timestamp as {{ dbt.type_timestamp() }}) as rejected_at,
        -- arrival: the source's publish time, the rejection time when unknown
        cast(coalesce(publish_timestamp, processing_timestamp) as {{ dbt.type_timestamp() }}) as arrived_at

    from ranked
    where record_id is null or copy_rank = 1

)

select * from renamed
