{% test unique_combination(model, columns) %}
-- No two rows share these columns (the mart's natural key).
select {{ columns | join(', ') }}, count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
