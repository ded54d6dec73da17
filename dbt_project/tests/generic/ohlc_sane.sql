{% test ohlc_sane(model) %}
-- Prices positive, high above and low below open and close, volumes and trades non-negative.
select *
from {{ model }}
where high < greatest(open, close)
   or low > least(open, close)
   or low <= 0
   or volume < 0
   or quote_volume < 0
   or trades < 0
   or taker_buy_base < 0
   or taker_buy_base > volume
{% endtest %}
