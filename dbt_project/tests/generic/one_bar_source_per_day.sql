{% test one_bar_source_per_day(model) %}
-- Each (market, symbol, UTC day) is built from one interval of raw bars, 1m, 1h or 1d (the marts' per-day rule).
select market, symbol, date_trunc('day', bucket at time zone 'UTC') as day, array_agg(distinct bar_source) as sources
from {{ model }}
group by market, symbol, date_trunc('day', bucket at time zone 'UTC')
having count(distinct bar_source) > 1 or bool_or(bar_source is null or bar_source not in ('1m', '1h', '1d'))
{% endtest %}
