{% test no_bucket_gaps(model, width, time_column='bucket', partition_by=['market', 'symbol']) %}
-- Consecutive buckets of a series are `width` apart: a larger step is a gap (missing bucket).
with steps as (
    select
        {{ partition_by | join(', ') }},
        {{ time_column }} as bucket,
        lead({{ time_column }}) over (partition by {{ partition_by | join(', ') }} order by {{ time_column }}) as next_bucket
    from {{ model }}
)
select *, next_bucket - bucket as step
from steps
where next_bucket - bucket > interval '{{ width }}'
{% endtest %}
