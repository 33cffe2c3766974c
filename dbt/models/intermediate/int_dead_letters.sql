{#
    The dead letters that stand: stg_campaign_pulse__dead_letters less an
    ENRICH_UNAVAILABLE row whose event was enriched after all, in the retry
    of the bundle that rejected it.

    On Dataflow the dead-letter write is fused with Enrich. When Bigtable
    does not answer, the bundle's dead letters can be appended and the bundle
    then fail for another reason; its retry reads the same messages again,
    may find Bigtable answering, and writes the events as facts. Such a fact
    has the dead letter's event id, source and arrival time (the same Pub/Sub
    message's publish time). A replay of the dead letter (cmd/replay) is a new
    message with a new publish time, and a file-route dead letter has no
    publish time: those rows stand, the record of an outage.
#}
with

dead_letters as (

    select * from {{ ref('stg_campaign_pulse__dead_letters') }}

),

events as (

    select * from {{ ref('stg_campaign_pulse__marketing_events') }}

),

final as (

    -- not exists rather than a join: staging can hold an id twice (two
    -- events of one id, a dedup horizon apart), which would repeat the row
    select
        dead_letters.*,
        cast({{ dbt.date_trunc('hour', 'dead_letters.arrived_at') }} as {{ dbt.type_timestamp() }}) as arrival_hour
    from dead_letters
    where not exists (
        select 1
        from events
        where dead_letters.error_code = 'ENRICH_UNAVAILABLE'
            and events.event_id = dead_letters.event_id
            and events.source_name = dead_letters.source_name
            and events.ingested_at = dead_letters.published_at
    )

)

select * from final
