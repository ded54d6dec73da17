{#- Models land in the schema their layer names (staging, intermediate, marts), not "<target>_<layer>":
    analysts query marts.fct_ohlcv_1h whatever the dbt target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
