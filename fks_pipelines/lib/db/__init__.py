"""Database code: the embedded server, connections and migrations, and the transactional kline loader."""
