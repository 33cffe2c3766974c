{#
    Generic test: no two rows share the values of these columns (a compound
    key). dbt_utils has one; hub packages cannot be installed here, so it is
    a few lines of our own.
#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
