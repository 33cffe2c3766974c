{#
    The one currency of a group's values, or 'MIXED' when it has several
    (sums across currencies do not add up, so the marts and ROI refuse
    them), or null when it has none. One rule for every mart, so a campaign
    is MIXED in the hourly and daily marts, dim_campaign and the funnel alike.
#}
{% macro single_or_mixed(currency_expr) -%}
    case when count(distinct {{ currency_expr }}) > 1 then 'MIXED' else max({{ currency_expr }}) end
{%- endmacro %}

{#
    The currency of a group's conversions. Only conversions carry a value
    that counts (the contract lets any event carry one), so a click's or a
    view's currency never makes a campaign MIXED.
#}
{% macro conversion_currency() -%}
    {{ single_or_mixed('case when is_conversion = 1 then currency end') }}
{%- endmacro %}

{#
    The value of a group's conversions, 0 when it has none. The same rule as
    conversion_currency(): a value on any other event type is not counted,
    so the sum and its currency always describe the same rows.
#}
{% macro conversion_value_sum() -%}
    coalesce(sum(case when is_conversion = 1 then conversion_value end), 0)
{%- endmacro %}
