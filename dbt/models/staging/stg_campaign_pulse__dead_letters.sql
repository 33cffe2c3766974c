{#
    Rejected records. The raw payload stays in the source table for the
    replay tool; the models need only its size.
#}
with

source_rows as (

    select * from {{ source('campaign_pulse', 'dead_letter_events') }}
    where {{ source_partition_filter('processing_timestamp') }}

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
        cast(publish_timestamp as {{ dbt.type_timestamp() }}) as published_at,
        cast(processing_timestamp as {{ dbt.type_timestamp() }}) as rejected_at,
        -- arrival: the source's publish time, the rejection time when unknown
        cast(coalesce(publish_timestamp, processing_timestamp) as {{ dbt.type_timestamp() }}) as arrived_at

    from source_rows

)

select * from renamed
